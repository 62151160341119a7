import { Code, type ConnectError } from "@connectrpc/connect";

/**
 * Codes of failures that pass by themselves: the very same request, sent
 * again later, may well succeed (the broker or the key set is back, another
 * instance took over, a race is not lost twice, a server-side time limit
 * starts over). `resource_exhausted` is transient only with a retry hint (see
 * `transientRetryMs`).
 */
const transientCodes: ReadonlySet<Code> = new Set([Code.Unavailable, Code.Aborted, Code.DeadlineExceeded]);

/** RFC 9110 §10.2.3 `Retry-After` as delay-seconds; the HTTP-date form is not produced here. */
const delaySeconds = /^\d{1,9}$/;

/**
 * The reconnection time (`retry:`, in milliseconds) to give an SSE client for
 * a transient failure, or undefined for a refusal, which keeps its HTTP status.
 *
 * Why it matters: a browser's `EventSource` cannot change its request, and
 * any answer but 200 `text/event-stream` closes it for good (WHATWG HTML
 * §9.2.3 "fail the connection"), while a 200 stream that ends makes it
 * reconnect after `retry:` (§9.2.3 "reestablish the connection"). So a
 * transient failure is answered as a stream that opens, says `event: error`
 * and ends; a refusal (bad request, credentials, rights, not found, a limit
 * the client itself must lift) keeps its status so the browser stops.
 * `resource_exhausted` with `retry-after` (a rate that refills) is transient,
 * and the client waits at least that long; without it (a message too large,
 * too many streams open) it is a refusal.
 */
export function transientRetryMs(error: ConnectError, retryMs: number): number | undefined {
  if (transientCodes.has(error.code)) return retryMs;
  if (error.code === Code.ResourceExhausted) {
    const retryAfter = error.metadata.get("retry-after")?.trim() ?? "";
    if (delaySeconds.test(retryAfter)) return Math.max(retryMs, Number(retryAfter) * 1000);
  }
  return undefined;
}
