import { toBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { cursorOf } from "../../wire/cursor-field.js";
import { compressedMessage, deflateMessage, type WebSocketDeflate } from "./deflate.js";
import { encodeMessageFields, encodeMessagePrefix, webSocketBinaryFrame } from "./frames.js";

/** Encodes response messages to Protobuf binary and to wire frames, once per object. */
export interface PayloadCache {
  /** The binary encoding of `response`, computed on first use and reused after. */
  encode(schema: DescMessage, response: Message): Uint8Array;
  /**
   * The whole WebSocket message for `response` on call `id`: the frame header
   * and `ServerFrame{message{id, payload, cursor}}`. The id-independent part
   * (payload and cursor) is encoded once per response and, for sockets that
   * negotiated `deflate`, compressed once per window size whatever the call
   * ids: a fanned-out message is deflated once, not once per socket. Sockets
   * that use the same call id (most clients number their calls from 1) and
   * the same window share one Buffer.
   */
  messageFrame(schema: DescMessage, response: Message, id: number, deflate?: WebSocketDeflate): Buffer;
}

/** The wire frames of one response for one call id: plain, and compressed per window size. */
interface FramesOfId {
  plain: Buffer | undefined;
  /** Indexed by `server_max_window_bits` (9 to 15). */
  deflated: (Buffer | undefined)[] | undefined;
}

/** What one response's frames are built from, whatever the call id. */
interface ResponseFrames {
  /** `encodeMessageFields`: the payload and cursor fields, which end every frame of the response. */
  readonly fields: Uint8Array;
  /** `deflateMessage(fields)` per `server_max_window_bits`: computed once each, shared by every call id. */
  readonly deflatedFields: (Buffer | undefined)[];
  readonly byId: Map<number, FramesOfId>;
}

/**
 * A cache of binary encodings keyed by the response object itself. Services
 * hand every subscriber of a fanned-out message the very same object (see
 * `createMethodRegistry`), so a message sent to N sockets is encoded once; the
 * WeakMap lets an encoding go when its message does.
 */
/** Distinct call ids whose finished frames are kept per response; frames for other ids are assembled per send. */
const maxCachedIdsPerResponse = 4;

export function createPayloadCache(): PayloadCache {
  const encodings = new WeakMap<Message, Uint8Array>();
  const frames = new WeakMap<Message, ResponseFrames>();
  const encode = (schema: DescMessage, response: Message) => {
    let bytes = encodings.get(response);
    if (bytes === undefined) {
      bytes = toBinary(schema, response);
      encodings.set(response, bytes);
    }
    return bytes;
  };
  const framesOf = (schema: DescMessage, response: Message) => {
    let entry = frames.get(response);
    if (entry === undefined) {
      entry = { fields: encodeMessageFields(encode(schema, response), cursorOf(schema, response)), deflatedFields: [], byId: new Map() };
      frames.set(response, entry);
    }
    return entry;
  };
  /**
   * The frame for one id: the id-dependent prefix is a few bytes built per
   * call; the fields, and their deflated form, come from the response's entry.
   */
  const frameOf = (entry: ResponseFrames, id: number, deflate: WebSocketDeflate | undefined) => {
    const prefix = encodeMessagePrefix(id, entry.fields.length);
    const size = prefix.length + entry.fields.length;
    if (deflate === undefined || size < deflate.threshold) return webSocketBinaryFrame(Buffer.concat([prefix, entry.fields], size));
    let deflatedFields = entry.deflatedFields[deflate.windowBits];
    if (deflatedFields === undefined) {
      // Counted here, where the deflating happens: once per response and window, whatever the ids.
      deflate.counter.inc();
      deflatedFields = deflateMessage(entry.fields, deflate.windowBits);
      entry.deflatedFields[deflate.windowBits] = deflatedFields;
    }
    return webSocketBinaryFrame(compressedMessage(prefix, deflatedFields), true);
  };
  return {
    encode,
    messageFrame(schema, response, id, deflate) {
      const entry = framesOf(schema, response);
      let cached = entry.byId.get(id);
      if (cached === undefined) {
        cached = { plain: undefined, deflated: undefined };
        // Call ids are the clients' choice: a response kept in history must not
        // keep a whole frame per id, so only the first few ids' frames are kept
        // (the others reuse the cached fields and deflated fields).
        if (entry.byId.size < maxCachedIdsPerResponse) entry.byId.set(id, cached);
      }
      if (deflate === undefined) return (cached.plain ??= frameOf(entry, id, undefined));
      const deflated = (cached.deflated ??= []);
      return (deflated[deflate.windowBits] ??= frameOf(entry, id, deflate));
    },
  };
}
