import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { findBearerToken } from "./credentials.js";
import { identityKey } from "./identity.js";
import type { TokenVerifier } from "./tokens.js";

/**
 * Authenticates every call, on every transport: the Connect router applies it
 * to Connect, gRPC and gRPC-Web, and the bridges invoke methods through the
 * same interceptor list. A call without valid credentials fails with
 * `unauthenticated` before any service code runs, and a stream outlives its
 * token by no more than a timer tick: when `exp` passes, it ends with
 * `unauthenticated` and the client resumes from its cursor with a fresh token.
 */
export function createAuthInterceptor(verifier: TokenVerifier): Interceptor {
  return (next) => async (request) => {
    const token = findBearerToken(request.header);
    if (token === undefined || token === "") {
      throw new ConnectError("missing credentials: send Authorization: Bearer <token>", Code.Unauthenticated);
    }
    const identity = await verifier.verify(token);
    request.contextValues.set(identityKey, identity);
    const response = await next(request);
    if (!response.stream || identity.expiresAt === undefined) return response;
    return { ...response, message: endAtExpiry(response.message, identity.expiresAt) };
  };
}

/** setTimeout's largest delay; longer waits re-arm. */
const maxTimerDelayMs = 2 ** 31 - 1;

/** Passes messages through until `expiresAt`, then ends with `unauthenticated`. */
async function* endAtExpiry<T>(messages: AsyncIterable<T>, expiresAt: number): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    const arm = () => {
      const left = expiresAt - Date.now();
      if (left <= 0) reject(new ConnectError("token expired: resume with a fresh token", Code.Unauthenticated));
      else timer = setTimeout(arm, Math.min(left, maxTimerDelayMs));
    };
    arm();
  });
  expired.catch(() => undefined);
  let done = false;
  try {
    for (;;) {
      const result = await Promise.race([iterator.next(), expired]);
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    clearTimeout(timer);
    // The stream's own signal (aborted when the call ends) stops the service;
    // return() releases the iterator once its pending read settles.
    if (!done) void iterator.return?.()?.catch(() => undefined);
  }
}
