import { ScalarType, toBinary, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { outgoingFrame, type WebSocketDeflate } from "./websocket-deflate.js";
import { encodeMessageFrame, webSocketBinaryFrame } from "./websocket-frames.js";

/** Encodes response messages to Protobuf binary and to wire frames, once per object. */
export interface PayloadCache {
  /** The binary encoding of `response`, computed on first use and reused after. */
  encode(schema: DescMessage, response: Message): Uint8Array;
  /**
   * The whole WebSocket message for `response` on call `id`: the frame header
   * and `ServerFrame{message{id, payload, cursor}}`. Sockets that use the same
   * call id (most clients number their calls from 1) share one Buffer, and
   * so do sockets that negotiated the same `deflate` window: a fanned-out
   * message is compressed once, not once per socket.
   */
  messageFrame(schema: DescMessage, response: Message, id: number, deflate?: WebSocketDeflate): Buffer;
}

/** The wire frames of one response for one call id: plain, and compressed per window size. */
interface FramesOfId {
  plain: Buffer | undefined;
  /** Indexed by `server_max_window_bits` (9 to 15). */
  deflated: (Buffer | undefined)[] | undefined;
}

/**
 * A cache of binary encodings keyed by the response object itself. Services
 * hand every subscriber of a fanned-out message the very same object (see
 * `createMethodRegistry`), so a message sent to N sockets is encoded once; the
 * WeakMap lets an encoding go when its message does.
 */
/** Distinct call ids whose frames are kept per response; frames for other ids are built per send. */
const maxCachedIdsPerResponse = 4;

export function createPayloadCache(): PayloadCache {
  const encodings = new WeakMap<Message, Uint8Array>();
  const frames = new WeakMap<Message, Map<number, FramesOfId>>();
  const encode = (schema: DescMessage, response: Message) => {
    let bytes = encodings.get(response);
    if (bytes === undefined) {
      bytes = toBinary(schema, response);
      encodings.set(response, bytes);
    }
    return bytes;
  };
  const serverFrame = (schema: DescMessage, response: Message, id: number) =>
    encodeMessageFrame(id, encode(schema, response), cursorOfResponse(schema, response));
  return {
    encode,
    messageFrame(schema, response, id, deflate) {
      let byId = frames.get(response);
      if (byId === undefined) {
        byId = new Map();
        frames.set(response, byId);
      }
      let cached = byId.get(id);
      if (cached === undefined) {
        cached = { plain: undefined, deflated: undefined };
        // Call ids are the clients' choice: a response kept in history must not
        // keep a copy per id, so only the first few ids are cached.
        if (byId.size < maxCachedIdsPerResponse) byId.set(id, cached);
      }
      if (deflate === undefined) return (cached.plain ??= webSocketBinaryFrame(serverFrame(schema, response, id)));
      const deflated = (cached.deflated ??= []);
      return (deflated[deflate.windowBits] ??= outgoingFrame(serverFrame(schema, response, id), deflate));
    },
  };
}

const cursorFields = new WeakMap<DescMessage, DescField | null>();

/**
 * The top-level string field named `cursor` of a message type, if it has one:
 * the schema's convention for resumable streams (DESIGN.md, "Cursors"), read
 * from the descriptor so no service-specific code is needed.
 */
export function cursorFieldOf(schema: DescMessage): DescField | undefined {
  let field = cursorFields.get(schema);
  if (field === undefined) {
    field = schema.fields.find((f) => f.name === "cursor" && f.fieldKind === "scalar" && f.scalar === ScalarType.STRING) ?? null;
    cursorFields.set(schema, field);
  }
  return field ?? undefined;
}

/** A response's cursor (its top-level `cursor` field), or "" when its type has none. */
export function cursorOfResponse(schema: DescMessage, response: Message): string {
  const field = cursorFieldOf(schema);
  if (!field) return "";
  const value = (response as unknown as Record<string, unknown>)[field.localName];
  return typeof value === "string" ? value : "";
}
