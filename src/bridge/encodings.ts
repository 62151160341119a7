import { toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";

/** The response encodings of the Connect/gRPC stream writer, as connect-node names them. */
export type EnvelopeEncoding = "identity" | "gzip" | "br";

/** The WebSocket message frames of one response for one call id: plain, and compressed per window size. */
export interface WebSocketFramesOfId {
  plain: Buffer | undefined;
  /** Indexed by `server_max_window_bits` (9 to 15). */
  deflated: (Buffer | undefined)[] | undefined;
}

/**
 * Everything one response object is encoded to, each made on first use by
 * the transport that needs it and then shared by every connection that
 * sends it. The transports' own modules fill their fields (sse/message-event.ts,
 * websocket/message-frame.ts, rpc/envelope.ts); `binaryOf` fills the one
 * they share.
 */
export interface Encodings {
  /** Protobuf binary: the WebSocket payload and the Connect/gRPC envelope's content, encoded once for both. */
  binary: Uint8Array | undefined;
  /** The SSE event of a resumable method: `id:` the cursor, `data:` proto3 JSON. */
  sseEventWithId: Buffer | undefined;
  /** The SSE event of a method that is not resumable: `data:` only. Whether `id:` is written depends on the method, not only on the message. */
  sseEventWithoutId: Buffer | undefined;
  /** The 5-byte-prefixed Connect/gRPC envelope per response encoding. */
  envelopes: Partial<Record<EnvelopeEncoding, Uint8Array>> | undefined;
  /** WebSocket: the payload and cursor fields that end every message frame of the response, whatever the call id. */
  frameFields: Uint8Array | undefined;
  /** WebSocket: `frameFields` deflated, per `server_max_window_bits`: once each, shared by every call id. */
  deflatedFrameFields: (Buffer | undefined)[] | undefined;
  /** WebSocket: the finished frames of the first few call ids (see websocket/message-frame.ts). */
  framesById: Map<number, WebSocketFramesOfId> | undefined;
}

/**
 * One cache for every transport, keyed by the response object itself.
 * Services hand every subscriber of a fanned-out message the very same object
 * (see `createMethodRegistry`), so a message sent to N connections is encoded
 * once per encoding, whatever their transports (DESIGN.md "Encode once").
 * Weak keys: an entry lives as long as some subscriber, or the history a
 * service keeps, still holds the message. Only the server that made an object
 * holds it, so one cache serves every server of the process.
 */
const cache = new WeakMap<Message, Encodings>();

/** The encodings of `response`, empty at first. */
export function encodingsOf(response: Message): Encodings {
  let encodings = cache.get(response);
  if (encodings === undefined) {
    encodings = {
      binary: undefined,
      sseEventWithId: undefined,
      sseEventWithoutId: undefined,
      envelopes: undefined,
      frameFields: undefined,
      deflatedFrameFields: undefined,
      framesById: undefined,
    };
    cache.set(response, encodings);
  }
  return encodings;
}

/** The Protobuf binary encoding of `response` (of type `schema`), computed on first use and reused after. */
export function binaryOf(schema: DescMessage, response: Message): Uint8Array {
  const encodings = encodingsOf(response);
  return (encodings.binary ??= toBinary(schema, response));
}
