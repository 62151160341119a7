import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/** Header names whose values are credentials, wherever a log line carries headers. */
const credentialHeaders = ["authorization", "cookie", "set-cookie", "proxy-authorization"];

/** Structured JSON logs, on stdout unless a destination is given (tests capture one). Credentials never reach a log line. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: "rivulet" },
    redact: {
      paths: ["token", ...["headers", "req.headers"].flatMap((at) => credentialHeaders.map((name) => `${at}["${name}"]`))],
      censor: "[REDACTED]",
    },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** The query parameter the server takes a bearer token from (src/auth/credentials.ts), as it reads it: decoded. */
const tokenParameter = "access_token";

/**
 * A URL (path and query, or absolute) with the value of every query parameter
 * that names the token replaced, for logging. The name is compared after the
 * same decoding the server applies (URLSearchParams: `+` and percent escapes),
 * so `access%5Ftoken` or `%61ccess_token`, which the server accepts, are
 * redacted too; so is any case (ACCESS_TOKEN), which costs nothing.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf("?");
  if (start < 0) return url;
  // Split on `&` as URLSearchParams does, and on `#` and `;` too: a fragment or
  // a `;` separator that some parser might honour must not hide a token either.
  const parts = url.slice(start + 1).split(/([&#;])/);
  for (let i = 0; i < parts.length; i += 2) {
    const part = parts[i]!;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const name = [...new URLSearchParams(rawName).keys()][0] ?? "";
    if (name.trim().toLowerCase() === tokenParameter) parts[i] = `${rawName}=[REDACTED]`;
  }
  return `${url.slice(0, start + 1)}${parts.join("")}`;
}
