import { Code, ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeToString } from "@connectrpc/connect/protocol-connect";

/**
 * What a client may see of a failure, on every transport that writes its own
 * errors: SSE's `event: error` and refusal bodies, the WebSocket `end` frame,
 * the Connect end-of-stream message and gRPC's status trailers. connect-node
 * shapes the errors of the calls it serves itself the same way.
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

/** The Connect error JSON: the body of an SSE `error` event or refusal, and the `error` of a WebSocket `end` frame. */
export interface ErrorJson {
  /** The code as the Connect protocol spells it: "permission_denied". */
  readonly code: string;
  /** The message without connect-es's "[code]" prefix. */
  readonly message: string;
}

/**
 * The Connect error JSON of an error (https://connectrpc.com/docs/protocol#error-end-stream),
 * so every transport names a failure as a Connect client would. Pass only
 * errors fit for clients: see `publicError`.
 */
export function errorJson(error: ConnectError): ErrorJson {
  return { code: codeToString(error.code), message: error.rawMessage };
}
