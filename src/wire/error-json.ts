import type { JsonValue } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeFromString, errorFromJson } from "@connectrpc/connect/protocol-connect";

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
