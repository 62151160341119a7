import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs on stdout. Credentials never reach a log line. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "rivulet" },
    redact: { paths: ["headers.authorization", "headers.cookie", "token", "req.headers.authorization"], censor: "[REDACTED]" },
  });
}

/** A URL (path and query) with any `access_token` value replaced, for logging. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&#]*/gi, "$1[REDACTED]");
}
