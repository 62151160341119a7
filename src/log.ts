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

/** The process's log on stdout, with a shutdown that cannot hang on it. */
export interface ProcessLog {
  readonly logger: Logger;
  /**
   * Waits, for at most `timeoutMs`, until stdout has taken the lines still
   * queued for it. `process.exit` is then safe: it drops what is left rather
   * than wait on a reader that went away (`| head`) or stopped reading.
   */
  close(timeoutMs: number): Promise<void>;
}

/** Bytes of log lines queued for a stdout that is not being read, past which new lines are dropped. */
const maxQueuedLogBytes = 16 * 1024 * 1024;

/**
 * The logger `npm start` uses. It writes through `process.stdout`, which on a
 * pipe or socket is non-blocking (libuv): a stalled reader never blocks the
 * server, and nothing is left in a thread that exit would wait for. pino's
 * own stdout destination (sonic-boom) writes from libuv's thread pool and
 * flushes synchronously at exit, so a closed pipe made it retry forever and a
 * full one blocked exit. Lines past `maxQueuedLogBytes` are dropped (memory
 * stays bounded); after EPIPE none are written.
 */
export function createProcessLog(level: string): ProcessLog {
  const stdout = process.stdout;
  let broken = false;
  stdout.on("error", () => (broken = true));
  const destination: DestinationStream = {
    write(line: string) {
      if (!broken && stdout.writableLength < maxQueuedLogBytes) stdout.write(line);
    },
  };
  return {
    logger: createLogger(level, destination),
    close(timeoutMs) {
      if (broken || stdout.writableLength === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          stdout.off("error", finish);
          resolve();
        };
        const timer = setTimeout(finish, timeoutMs);
        stdout.once("error", finish);
        // Writes complete in order: this callback runs once every line before it is out.
        stdout.write("", finish);
      });
    },
  };
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
