import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ClientFrameSchema, ServerFrameSchema, type ClientFrame } from "../../../gen/rivulet/bridge/v1/bridge_pb.js";
import { WebSocketCloseCode } from "../../wire/websocket-close-codes.js";
import type { ErrorJson } from "../../wire/error-json.js";

/**
 * Pure framing for `GET /ws`: bytes in, frames out, no sockets, no state.
 * Every WebSocket message is one binary frame holding one Protobuf
 * `ClientFrame` or `ServerFrame` (proto/rivulet/bridge/v1/bridge.proto).
 */

/** A frame the server cannot read; `closeCode` is what the connection closes with (like ws's `WS_ERR_*` errors). */
export class WebSocketFrameError extends Error {
  override readonly name = "WebSocketFrameError";
  constructor(
    message: string,
    readonly closeCode: number,
  ) {
    super(message);
  }
}

/** Decodes one client frame; throws WebSocketFrameError (close 1007) when the bytes are not a ClientFrame. */
export function decodeClientFrame(data: Uint8Array): ClientFrame {
  try {
    return fromBinary(ClientFrameSchema, data);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new WebSocketFrameError(`frame is not a rivulet.bridge.v1.ClientFrame: ${detail}`, WebSocketCloseCode.invalidPayload);
  }
}

// Protobuf wire format (protobuf.dev/programming-guides/encoding): a tag is
// (field_number << 3) | wire_type; wire type 0 is a varint, 2 is length-delimited.
const serverFrameMessageTag = (1 << 3) | 2; // ServerFrame.message = 1
const messageIdTag = (1 << 3) | 0; // Message.id = 1
const messagePayloadTag = (2 << 3) | 2; // Message.payload = 2
const messageCursorTag = (3 << 3) | 2; // Message.cursor = 3
const utf8 = new TextEncoder();

/**
 * `ServerFrame{message{id, payload, cursor}}`, built by hand around payload
 * bytes encoded once per response object: for a message fanned out to N
 * subscribers only these few envelope bytes differ. Byte-for-byte what
 * `toBinary(ServerFrameSchema, …)` writes (fields in number order, proto3
 * zero values omitted).
 */
export function encodeMessageFrame(id: number, payload: Uint8Array, cursor: string): Uint8Array {
  const fields = encodeMessageFields(payload, cursor);
  const prefix = encodeMessagePrefix(id, fields.length);
  const frame = new Uint8Array(prefix.length + fields.length);
  frame.set(prefix);
  frame.set(fields, prefix.length);
  return frame;
}

/**
 * The part of a message frame that does not depend on the call id: the
 * `payload` and `cursor` fields of the inner `Message`, which end the frame.
 * Split from the prefix so that it can be compressed once per response
 * whatever the subscribers' call ids (see `compressedMessage`).
 */
export function encodeMessageFields(payload: Uint8Array, cursor: string): Uint8Array {
  const cursorBytes = cursor === "" ? undefined : utf8.encode(cursor);
  let size = 0;
  if (payload.length > 0) size += 1 + varintSize(payload.length) + payload.length;
  if (cursorBytes) size += 1 + varintSize(cursorBytes.length) + cursorBytes.length;
  const fields = new Uint8Array(size);
  let at = 0;
  if (payload.length > 0) {
    fields[at++] = messagePayloadTag;
    at = writeVarint(fields, at, payload.length);
    fields.set(payload, at);
    at += payload.length;
  }
  if (cursorBytes) {
    fields[at++] = messageCursorTag;
    at = writeVarint(fields, at, cursorBytes.length);
    fields.set(cursorBytes, at);
  }
  return fields;
}

/**
 * The id-dependent start of a message frame, followed on the wire by
 * `fieldsLength` bytes of `encodeMessageFields`: the `ServerFrame.message`
 * tag, the inner message's length (which grows with the id's varint) and the
 * `id` field. At most 12 bytes.
 */
export function encodeMessagePrefix(id: number, fieldsLength: number): Uint8Array {
  const idSize = id === 0 ? 0 : 1 + varintSize(id);
  const inner = idSize + fieldsLength;
  const prefix = new Uint8Array(1 + varintSize(inner) + idSize);
  let at = 0;
  prefix[at++] = serverFrameMessageTag;
  at = writeVarint(prefix, at, inner);
  if (id !== 0) {
    prefix[at++] = messageIdTag;
    writeVarint(prefix, at, id);
  }
  return prefix;
}

/**
 * A server-to-client WebSocket message on the wire (RFC 6455 §5.2): one
 * final, unmasked binary frame around `payload`. Built here rather than by
 * ws's `send` so that one message fanned out to many sockets is framed once
 * and the same bytes are queued on every socket. `compressed` sets RSV1: the
 * payload is permessage-deflate data (RFC 7692 §6.1).
 */
export function webSocketBinaryFrame(payload: Uint8Array, compressed = false): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = compressed ? 0xc2 : 0x82; // FIN, RSV1 when compressed, opcode 2 (binary)
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.set(payload, headerLength);
  return frame;
}

/** `ServerFrame{end{id, error?}}`: the last frame of a call; `error` is the Connect error JSON of a public error. */
export function encodeEndFrame(id: number, error?: ErrorJson): Uint8Array {
  return toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: { case: "end", value: { id, error } } }));
}

/** `ServerFrame{pong{nonce}}`: the answer to a client's `ping`. */
export function encodePongFrame(nonce: bigint): Uint8Array {
  return toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: { case: "pong", value: { nonce } } }));
}

/** Bytes of an unsigned varint (values below 2^32 here: ids and lengths). */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    target[at++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  target[at++] = value;
  return at;
}
