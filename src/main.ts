import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { ConfigError, loadConfig, usage, type Config } from "./config.js";
import { createProcessLog, type ProcessLog } from "./log.js";
import type { RivuletServer } from "./server.js";
import { reportStartFailure, runPrimary, workerAssignment } from "./workers.js";

/** What the log still gets after the server has closed, when the grace is already spent: enough for a healthy pipe. */
const minimumLogFlushMs = 100;

/**
 * The server's command line: `npm start -- --port 0` and `rivulet serve
 * --port 0` (src/cli) both run this, so they take the same flags; see `--help`.
 */
export function runServer(argv: readonly string[]): Promise<void> {
  return main(argv).catch((error: unknown) => failedToStart(error));
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes("--help")) {
    process.stdout.write(usage());
    return;
  }
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`rivulet: ${error.message}\n\n${usage()}`);
      process.exit(2);
    }
    throw error;
  }
  const worker = workerAssignment();
  const processLog = createProcessLog(config.logLevel);
  if (worker === undefined && config.workers > 1) return runPrimary(config, processLog);
  // A worker's every line says which worker it is.
  const log = worker === undefined ? processLog : { ...processLog, logger: processLog.logger.child({ worker: worker.number }) };
  const serving = worker === undefined ? config : { ...config, instanceId: worker.instanceId, port: worker.port };
  // Imported here, not above: a --workers primary serves nothing, and without the server's modules it takes half the memory.
  const server = import("./server.js").then(({ startServer }) => startServer({ config: serving, logger: log.logger, worker: worker?.number }));
  // Listening before the server is up: a SIGTERM sent as soon as "listening"
  // is logged (a supervisor, a test) must get the graceful shutdown, not
  // Node's default of dying at once.
  stopOnSignals(server, log, serving.shutdownGraceMs, worker === undefined);
  try {
    await server;
  } catch (error) {
    await log.close(minimumLogFlushMs);
    return failedToStart(error, serving);
  }
}

/**
 * SIGTERM or SIGINT: a graceful shutdown that, log included, fits in
 * --shutdown-grace wherever stdout goes; a second signal exits at once,
 * unless `secondSignalExits` is false: a worker of `--workers` gets Ctrl-C's
 * SIGINT from the terminal and its primary's SIGTERM together, and leaves it
 * to the primary to kill it if it overruns.
 */
function stopOnSignals(starting: Promise<RivuletServer>, log: ProcessLog, shutdownGraceMs: number, secondSignalExits: boolean): void {
  const { logger } = log;
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      if (!secondSignalExits) return;
      logger.warn({ signal }, "second signal: exiting now");
      void log.close(0).then(() => process.exit(1));
      return;
    }
    const deadline = Date.now() + shutdownGraceMs;
    logger.info({ signal }, "received signal");
    void starting.then(
      (server) =>
        server
          .close()
          .then(() => log.close(Math.max(deadline - Date.now(), minimumLogFlushMs)))
          .then(() => process.exit(0)),
      // A server that failed to start exits through failedToStart instead.
      () => undefined,
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

/** One line for what an operator can fix (a port in use, a privileged port); a stack trace only for what is a bug. Exits 1. */
function failedToStart(error: unknown, config?: Config): void {
  const code = (error as { code?: unknown } | null)?.code;
  let message: string;
  if (config && code === "EADDRINUSE") message = `port ${config.port} is in use; pass --port`;
  else if (config && code === "EACCES") message = `port ${config.port} needs privileges this process lacks; pass --port`;
  else if (config && code === "EADDRNOTAVAIL") message = `address ${config.host} is not one of this host's; pass --host`;
  else if (error instanceof ConfigError) message = error.message;
  else message = `failed to start: ${error instanceof Error ? error.stack : String(error)}`;
  if (workerAssignment() !== undefined) {
    // The primary writes it, once for all its workers, and exits with it.
    return reportStartFailure(message);
  }
  process.stderr.write(`rivulet: ${message}\n`);
  process.exit(1);
}

/** Whether Node runs this file itself (`npm start`), rather than the CLI importing it. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) void runServer(process.argv.slice(2));
