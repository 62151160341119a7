import { Code } from "@connectrpc/connect";

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
