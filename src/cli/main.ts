import { UsageError, type ExitCode } from "./errors.js";

const help = `Usage: rivulet <command> [options]   (rivulet <command> --help for each)

  serve                          run the server (what npm start runs; rivulet serve --help lists its flags)
  token --user USER              mint a token with the server's secret
  call <Service/Method> [JSON]   one unary call, its response as one JSON line
  tail <Service/Method> [JSON]   a server stream, one JSON line per response, resumed on reconnect
  apikey new NAME                make an API key for rivulet.admin.v1.AdminService

Client commands take --url (default http://localhost:8080) and --token (or RIVULET_TOKEN).
Exit codes: 0 ok; 1 the call failed; 2 usage error.
`;

/**
 * Runs one subcommand and says how the process should exit; `serve` instead
 * keeps running until a signal. Each subcommand is loaded only when asked
 * for: `tail` and `call` start in a fraction of the time the whole server's
 * modules would take.
 */
async function run(argv: readonly string[]): Promise<ExitCode | "serving"> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      await (await import("../main.js")).runServer(rest);
      return "serving";
    case "token":
      return (await import("./token.js")).token(rest, process.env);
    case "call":
      return (await import("./call.js")).call(rest, process.env);
    case "tail":
      return (await import("./tail.js")).tail(rest, process.env);
    case "apikey":
      return (await import("./apikey.js")).apikey(rest);
    case undefined:
      process.stderr.write(help);
      return 2;
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(help);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"; the commands are serve, token, call, tail and apikey (rivulet --help)`);
  }
}

run(process.argv.slice(2)).then(
  (code) => {
    // Exit at once rather than when the last socket closes (an HTTP/2 session lingers); stdout is flushed first.
    if (code !== "serving") process.stdout.write("", () => process.exit(code));
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`rivulet: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`rivulet: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
