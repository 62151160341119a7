import { Code, ConnectError } from "@connectrpc/connect";

/** A mistake in how the command was called: exit 2, with what to do instead. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** What a subcommand's run() returns: the process's exit code (0 ok, 1 the call failed, 2 usage). */
export type ExitCode = 0 | 1 | 2;

/** A Connect code as the protocol spells it on the wire (`permission_denied`), which is what the docs and server logs use. */
export function codeName(code: Code): string {
  return Code[code].replace(/[A-Z]/g, (letter, at: number) => (at === 0 ? "" : "_") + letter.toLowerCase());
}

/**
 * One line for a failed call: the Connect code and the server's message, and
 * for the failures a user fixes on this side (no token, no server) what to do.
 */
export function describeCallError(error: unknown, url: string): string {
  const failure = ConnectError.from(error);
  let hint = "";
  if (failure.code === Code.Unauthenticated) hint = "; pass --token or set RIVULET_TOKEN (`rivulet token --user NAME` mints one)";
  else if (failure.code === Code.Unavailable && /ECONNREFUSED|fetch failed|connect/i.test(failure.rawMessage))
    hint = `; is the server running at ${url}? pass --url`;
  return `${codeName(failure.code)}: ${failure.rawMessage}${hint}`;
}
