import { randomBytes } from "node:crypto";

/** The secret Rivulet servers on the bench sign tokens with; the load generator mints with it too. */
export const benchSecret = `bench-${randomBytes(24).toString("hex")}`;

/**
 * The command line of a Rivulet server on the bench: the real `src/main.ts`,
 * with limits opened wide enough for thousands of subscribers from one user
 * and writes at the ramp's rates (the defaults protect a production server
 * from exactly that).
 */
export function rivuletArgs(extra: readonly string[] = []): string[] {
  return [
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--auth-secret",
    benchSecret,
    // Rooms open to every token, as the peers' are: the access decision then falls through to this default.
    "--rooms-default",
    "allow",
    "--publish-rate",
    "1000000",
    "--publish-burst",
    "1000000",
    "--streams-per-user",
    "1000000",
    "--shutdown-grace",
    "0",
    "--log-level",
    "info",
    ...extra,
  ];
}
