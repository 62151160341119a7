import { Code, type ConnectError } from "@connectrpc/connect";
import { isTransient } from "../../wire/transient-codes.js";

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
 * Which failures are transient is the rule the clients follow too
 * (`isTransient`); here `resource_exhausted` is transient with `retry-after`
 * (a rate that refills), and the client waits at least that long; without it
 * (a message too large, too many streams open) it is a refusal.
 */
export function transientRetryMs(error: ConnectError, retryMs: number): number | undefined {
  const retryAfterMs = error.code === Code.ResourceExhausted ? retryAfterMsOf(error) : undefined;
  if (!isTransient(error.code, { limitLifts: retryAfterMs !== undefined })) return undefined;
  return Math.max(retryMs, retryAfterMs ?? 0);
}

/** The error's `retry-after` in milliseconds, when it is delay-seconds. */
function retryAfterMsOf(error: ConnectError): number | undefined {
  const retryAfter = error.metadata.get("retry-after")?.trim() ?? "";
  return delaySeconds.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
}
