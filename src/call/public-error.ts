import { Code, ConnectError } from "@connectrpc/connect";

/**
 * What a client may see of a failure, on every transport that writes its own
 * errors: SSE's `event: error` and refusal bodies, the WebSocket `end` frame,
 * the Connect end-of-stream message and gRPC's status trailers. connect-node
 * shapes the errors of the calls it serves itself the same way, and the
 * stream guard (src/limits/stream-guard.ts), the last line of every call's
 * error path, uses this too.
 */
export interface PublicError {
  /** Safe to send: a ConnectError as thrown, or a generic `internal` error. */
  readonly error: ConnectError;
  /** The original failure when it was not a ConnectError (a bug), for the logs only. */
  readonly hidden: unknown;
}

/**
 * Turns any failure of a call into the error a client may see. A ConnectError
 * was thrown on purpose and keeps its code and message. Anything else is a
 * bug or a library's internal failure whose message may reveal internals
 * (file paths, connection strings, SQL): the client gets `internal` with a
 * generic message, and the original goes to the logs only.
 */
export function publicError(reason: unknown): PublicError {
  if (reason instanceof ConnectError) return { error: reason, hidden: undefined };
  return { error: new ConnectError("internal error", Code.Internal), hidden: reason };
}
