import { ConfigError, loadConfig, usage } from "./config.js";
import { createLogger } from "./log.js";
import { startServer } from "./server.js";

/** The command line: `npm start -- --port 0`, see `--help`. */
async function main(): Promise<void> {
  if (process.argv.includes("--help")) {
    process.stdout.write(usage());
    return;
  }
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`rivulet: ${error.message}\n\n${usage()}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const server = await startServer({ config, logger });
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "received signal");
    void server.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(`rivulet: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
