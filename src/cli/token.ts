import { loadDevelopmentSecret, developmentSecretPath } from "../auth/development-secret.js";
import { RoomGrants, type RoomAction } from "../auth/room-grants.js";
import { createHmacTokens } from "../auth/tokens.js";
import { UsageError, type ExitCode } from "./errors.js";
import { parse } from "./options.js";

export const tokenHelp = `Usage: rivulet token --user USER [--roles a,b] [--rooms JSON] [--ttl 1h]

Mints an HS256 token the server accepts, signed with its secret: --auth-secret
(RIVULET_AUTH_SECRET), else development mode's ${developmentSecretPath} in the
working directory (run it where the server runs). Prints the token.

  --user USER        the token's subject (sub)
  --roles a,b        roles, comma-separated (e.g. publisher,worker; admin for AdminService)
  --rooms JSON       the rooms claim, e.g. '{"team-42:*":["read","write"]}'
  --ttl DURATION     lifetime: 90s, 30m, 1h, 7d (default 1h)
  --auth-secret S    the server's HS256 secret (default RIVULET_AUTH_SECRET)
  --auth-issuer I    the iss the server requires (default RIVULET_AUTH_ISSUER)
  --auth-audience A  the aud the server requires (default RIVULET_AUTH_AUDIENCE)
`;

const options = {
  user: { type: "string" },
  roles: { type: "string" },
  rooms: { type: "string" },
  ttl: { type: "string" },
  "auth-secret": { type: "string" },
  "auth-issuer": { type: "string" },
  "auth-audience": { type: "string" },
  help: { type: "boolean" },
} as const;

/** `rivulet token`: prints a token minted with the configured secret. */
export async function token(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const { values, positionals } = parse(argv, options, "token");
  if (values.help) {
    process.stdout.write(tokenHelp);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`rivulet token takes no arguments, got "${positionals.join(" ")}"; see rivulet token --help`);
  const user = values.user;
  if (user === undefined || user === "") throw new UsageError("--user is required, such as rivulet token --user alice");
  const roles = (values.roles ?? "")
    .split(",")
    .map((role) => role.trim())
    .filter(Boolean);
  const rooms = values.rooms === undefined ? undefined : roomsClaim(values.rooms);
  const ttlSeconds = values.ttl === undefined ? 3600 : seconds(values.ttl);
  const secretText = values["auth-secret"] ?? env.RIVULET_AUTH_SECRET;
  if (secretText === undefined && (env.RIVULET_AUTH_JWKS ?? "") !== "") {
    throw new UsageError("RIVULET_AUTH_JWKS is set and RIVULET_AUTH_SECRET is not: the server accepts tokens from your identity provider only");
  }
  const secret = secretText ?? (await loadDevelopmentSecret(developmentSecretPath));
  const minter = createHmacTokens(secret, {
    issuer: values["auth-issuer"] ?? env.RIVULET_AUTH_ISSUER,
    audience: values["auth-audience"] ?? env.RIVULET_AUTH_AUDIENCE,
  });
  process.stdout.write(`${await minter.mint({ userId: user, roles, rooms, ttlSeconds })}\n`);
  return 0;
}

/** The --rooms JSON, checked as the server will check the claim. */
function roomsClaim(text: string): Record<string, RoomAction[]> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--rooms is not JSON (${(error as Error).message}); write it as '{"team-42:*":["read","write"]}'`);
  }
  const parsed = RoomGrants.parse(value);
  if (typeof parsed === "string") throw new UsageError(`--rooms ${parsed} (write it as '{"team-42:*":["read","write"]}')`);
  return value as Record<string, RoomAction[]>;
}

/** A --ttl such as 90s, 30m, 1h or 7d (a bare number is seconds). */
function seconds(text: string): number {
  const match = /^(\d+)(s|m|h|d)?$/.exec(text);
  const value = match ? Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] ?? "s"]! : 0;
  if (!match || value <= 0) throw new UsageError(`--ttl must be a duration such as 90s, 30m, 1h or 7d, not "${text}"`);
  return value;
}
