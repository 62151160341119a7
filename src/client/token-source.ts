import { Code, ConnectError } from "@connectrpc/connect";

/**
 * What a client tells its token function when it asks. `refused` is the token
 * the server just refused (an expired token that ended a resumable stream, or
 * a call answered `unauthenticated`): a function that caches its token must
 * mint a new one rather than return that one again. Absent on an ordinary ask.
 */
export interface TokenRequest {
  readonly refused?: string;
}

/**
 * Where a client gets its bearer token: a fixed string, or a function (sync or
 * async) that returns a currently valid one. Only a function lets a stream
 * outlive its token: when the server ends a stream with `unauthenticated`
 * because the token expired, the client asks the function again, with
 * `{ refused: <that token> }`, and resumes from its last cursor
 * (docs/semantics.md, "Identity and authorization"). A `() => string` fits:
 * the argument may be ignored.
 */
export type TokenSource = string | ((request: TokenRequest) => string | Promise<string>);

/** Whether the source can give a token other than the one the server just refused. */
export function canRefreshToken(source: TokenSource | undefined): source is (request: TokenRequest) => string | Promise<string> {
  return typeof source === "function";
}

/**
 * The source's current token; `refused` is passed on to a function (see
 * `TokenRequest`). A function's failure comes back as a ConnectError
 * (`unauthenticated` unless it threw a ConnectError), the one error type
 * that crosses the client's boundaries.
 */
export async function currentToken(source: TokenSource, refused?: string): Promise<string> {
  if (typeof source === "string") return source;
  try {
    return await source(refused === undefined ? {} : { refused });
  } catch (error) {
    throw ConnectError.from(error, Code.Unauthenticated);
  }
}

/** The bearer token of an `authorization` header value, or undefined. */
export function bearerToken(authorization: string | null | undefined): string | undefined {
  const match = /^Bearer (.+)$/i.exec(authorization ?? "");
  return match?.[1];
}
