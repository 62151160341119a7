import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Where a client gets its bearer token: a fixed string, or a function (sync or
 * async) that returns a currently valid one. Only a function lets a stream
 * outlive its token: when the server ends a stream with `unauthenticated`
 * because the token expired, the client asks the function again and resumes
 * from its last cursor (docs/semantics.md, "Identity and authorization").
 */
export type TokenSource = string | (() => string | Promise<string>);

/** Whether the source can give a token other than the one the server just refused. */
export function canRefreshToken(source: TokenSource | undefined): source is () => string | Promise<string> {
  return typeof source === "function";
}

/**
 * The source's current token. A function's failure comes back as a
 * ConnectError (`unauthenticated` unless it threw a ConnectError), the one
 * error type that crosses the client's boundaries.
 */
export async function currentToken(source: TokenSource): Promise<string> {
  if (typeof source === "string") return source;
  try {
    return await source();
  } catch (error) {
    throw ConnectError.from(error, Code.Unauthenticated);
  }
}
