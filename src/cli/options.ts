import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The flags every client subcommand takes (DESIGN.md, "Client package and CLI"). */
export const clientOptions = {
  url: { type: "string" },
  token: { type: "string" },
  help: { type: "boolean" },
} as const satisfies Options;

/** Help text lines for the client flags. */
export const clientOptionsHelp = [
  "  --url URL        the server (default: RIVULET_URL, else http://localhost:8080)",
  "  --token TOKEN    bearer token (default: RIVULET_TOKEN); `rivulet token --user NAME` mints one",
].join("\n");

/** Parses a subcommand's arguments strictly; an unknown flag or a missing value is a usage error naming the subcommand's --help. */
export function parse<O extends Options>(argv: readonly string[], options: O, command: string) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}; see rivulet ${command} --help`);
  }
}

/** Where a client subcommand connects, and with which token. */
export interface Endpoint {
  readonly url: string;
  readonly token: string | undefined;
}

/** `--url`, else RIVULET_URL (checked to be an http(s) URL, trailing slash dropped), and `--token`, else RIVULET_TOKEN: the examples read the same variables. */
export function endpointOf(values: { url?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv): Endpoint {
  const url = (values.url ?? (env.RIVULET_URL || "http://localhost:8080")).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+$/.test(url))
    throw new UsageError(`--url must be the server's http:// or https:// address, such as http://localhost:8080, not "${url}"`);
  const token = values.token ?? env.RIVULET_TOKEN;
  return { url, token: token === "" ? undefined : token };
}

/** Call options carrying the token, if any. */
export function authorization(endpoint: Endpoint): Record<string, string> {
  return endpoint.token === undefined ? {} : { authorization: `Bearer ${endpoint.token}` };
}
