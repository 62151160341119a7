import { randomBytes } from "node:crypto";
import { apiKeyPrefix, hashApiKey } from "../auth/api-keys.js";
import { UsageError, type ExitCode } from "./errors.js";
import { parse } from "./options.js";

export const apikeyHelp = `Usage: rivulet apikey new NAME

Makes an API key for rivulet.admin.v1.AdminService (docs/security.md, "Server
API"). Prints the key, which only your backend keeps, and the line for the
file passed as --api-keys-file, which holds the key's SHA-256 only.
NAME: 1 to 64 letters, digits, '.', '_' or '-'. Also: npm run apikey -- new NAME
`;

/** A new API key and its line for --api-keys-file. 32 random bytes: guessing is hopeless, so the file may list a plain SHA-256 of the key. */
export function newApiKey(name: string): { readonly key: string; readonly line: string } {
  const key = `${apiKeyPrefix}${randomBytes(32).toString("base64url")}`;
  return { key, line: `${hashApiKey(key)} ${name}` };
}

/** `rivulet apikey new NAME` (and `npm run apikey -- new NAME`). */
export function apikey(argv: readonly string[]): ExitCode {
  const { values, positionals } = parse(argv, { help: { type: "boolean" } }, "apikey");
  if (values.help) {
    process.stdout.write(apikeyHelp);
    return 0;
  }
  const [command, name, ...rest] = positionals;
  if (command !== "new" || name === undefined || rest.length > 0)
    throw new UsageError("write rivulet apikey new NAME, such as rivulet apikey new billing-backend");
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new UsageError(`NAME must be 1 to 64 letters, digits, '.', '_' or '-', not "${name}"`);
  const { key, line } = newApiKey(name);
  process.stdout.write(
    [
      `API key "${name}" (give it to your backend, as Authorization: Bearer <key>; it is shown only now):`,
      "",
      `  ${key}`,
      "",
      "Line for the file passed as --api-keys-file (RIVULET_API_KEYS_FILE); the server reads it at start:",
      "",
      `  ${line}`,
      "",
    ].join("\n"),
  );
  return 0;
}
