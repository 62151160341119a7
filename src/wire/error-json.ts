import type { JsonValue } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeFromString, codeToString, errorFromJson } from "@connectrpc/connect/protocol-connect";

/**
 * A Connect error as Rivulet's bridges send it: the error JSON of the Connect
 * protocol (https://connectrpc.com/docs/protocol#error-end-stream: `code` in
 * snake case, `message`, `details`), which is also the shape of a WebSocket
 * `end`'s `rivulet.bridge.v1.Error`. connect-es's `errorFromJson` reads it;
 * two cases differ from it on purpose:
 *
 * - no `code` string at all is not a Connect error (a proxy's JSON page): the
 *   caller's `fallback`, which says what it knows instead (an HTTP status);
 * - a code string this client does not know (a newer server's) is `unknown`,
 *   as the protocol says, not the fallback's code.
 *
 * Anything else malformed (not an object, a `message` that is not a string,
 * a broken detail) is the fallback too.
 */
export function errorFromWire(value: JsonValue, fallback: ConnectError): ConnectError {
  if (typeof value !== "object" || value === null || Array.isArray(value) || typeof value.code !== "string") return fallback;
  const known = codeFromString(value.code) !== undefined;
  try {
    return errorFromJson(known ? value : { ...value, code: "unknown" }, undefined, fallback);
  } catch {
    return fallback;
  }
}

/** `errorFromWire` of a JSON text (an HTTP error body, an SSE `event: error`'s data); text that is not JSON is the fallback. */
export function errorFromWireJson(text: string, fallback: ConnectError): ConnectError {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    return fallback;
  }
  return errorFromWire(value, fallback);
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
 * so every transport names a failure as a Connect client would. Servers pass only
 * errors fit for clients: see `publicError` (src/call/public-error.ts).
 */
export function errorJson(error: ConnectError): ErrorJson {
  return { code: codeToString(error.code), message: error.rawMessage };
}
