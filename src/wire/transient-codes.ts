import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Codes of failures that pass by themselves: the very same request, sent
 * again later, may well succeed (the broker or the key set is back, another
 * instance took over, a race is not lost twice, a server-side time limit
 * starts over).
 */
const transientCodes: ReadonlySet<Code> = new Set([Code.Unavailable, Code.Aborted, Code.DeadlineExceeded]);

/**
 * Whether a failure passes by itself, so that the same call made again
 * later (a stream: resumed from its last cursor) may well succeed. The server
 * answers such failures so that clients retry (an SSE stream that says
 * `event: error` and ends, rather than a refusal's status: docs/protocol.md,
 * "Transient failures"), and the clients retry them with backoff.
 *
 * `resource_exhausted` is a limit, transient only when the limit lifts by
 * itself: a rate that refills (the error carries `retry-after`), or the
 * buffer of a lossless subscriber that fell behind (resuming starts with an
 * empty one). Other limits (too many streams, a message too large) are the
 * client's to lift. Which of these the error is, only its context tells:
 * `limitLifts` is the caller's reading of it.
 */
export function isTransient(code: Code, context: { readonly limitLifts: boolean }): boolean {
  return transientCodes.has(code) || (code === Code.ResourceExhausted && context.limitLifts);
}

/**
 * The Connect codes a client should retry, the same request again after a
 * backoff (a stream: resumed from its last cursor): `unavailable`, `aborted`
 * and `deadline_exceeded`. `resource_exhausted` is not in the list: it is
 * worth retrying only when the limit lifts by itself, which `isRetryable`
 * reads from the error. Every other code needs a change first (a new token,
 * another request, permission).
 */
export const retryableCodes: readonly Code[] = Object.freeze([...transientCodes]);

/**
 * Whether a client should retry the failed call (after a backoff): its code
 * is one of `retryableCodes`, or it is `resource_exhausted` with a
 * `retry-after` (a rate limit that refills, docs/protocol.md). Anything
 * that is not a ConnectError is not retryable: wrap it with
 * `ConnectError.from` first if it may be one in disguise.
 */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return false;
  return isTransient(error.code, { limitLifts: error.metadata.has("retry-after") });
}
