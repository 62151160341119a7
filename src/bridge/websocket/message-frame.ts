import type { DescMessage, Message } from "@bufbuild/protobuf";
import { cursorOf } from "../../wire/cursor-field.js";
import { binaryOf, encodingsOf, type Encodings, type WebSocketFramesOfId } from "../encodings.js";
import { compressedMessage, deflateMessage, type WebSocketDeflate } from "./deflate.js";
import { encodeMessageFields, encodeMessagePrefix, webSocketBinaryFrame } from "./frames.js";

/** Distinct call ids whose finished frames are kept per response; frames for other ids are assembled per send. */
const maxCachedIdsPerResponse = 4;

/**
 * The whole WebSocket message for `response` on call `id`: the frame header
 * and `ServerFrame{message{id, payload, cursor}}`. The id-independent part
 * (payload and cursor) is encoded once per response object (`encodingsOf`;
 * the payload is the binary encoding the Connect/gRPC writer shares) and, for
 * sockets that negotiated `deflate`, compressed once per window size whatever
 * the call ids: a fanned-out message is deflated once, not once per socket.
 * Sockets that use the same call id (most clients number their calls from 1)
 * and the same window share one Buffer.
 */
export function messageFrameOf(schema: DescMessage, response: Message, id: number, deflate?: WebSocketDeflate): Buffer {
  const encodings = encodingsOf(response);
  encodings.frameFields ??= encodeMessageFields(binaryOf(schema, response), cursorOf(schema, response));
  const byId = (encodings.framesById ??= new Map());
  let cached = byId.get(id);
  if (cached === undefined) {
    cached = { plain: undefined, deflated: undefined } satisfies WebSocketFramesOfId;
    // Call ids are the clients' choice: a response kept in history must not
    // keep a whole frame per id, so only the first few ids' frames are kept
    // (the others reuse the cached fields and deflated fields).
    if (byId.size < maxCachedIdsPerResponse) byId.set(id, cached);
  }
  if (deflate === undefined) return (cached.plain ??= frameOf(encodings, encodings.frameFields, id, undefined));
  const deflated = (cached.deflated ??= []);
  return (deflated[deflate.windowBits] ??= frameOf(encodings, encodings.frameFields, id, deflate));
}

/**
 * The frame for one id: the id-dependent prefix is a few bytes built per
 * call; the fields, and their deflated form, come from the response's encodings.
 */
function frameOf(encodings: Encodings, fields: Uint8Array, id: number, deflate: WebSocketDeflate | undefined): Buffer {
  const prefix = encodeMessagePrefix(id, fields.length);
  const size = prefix.length + fields.length;
  if (deflate === undefined || size < deflate.threshold) return webSocketBinaryFrame(Buffer.concat([prefix, fields], size));
  const deflatedFields = (encodings.deflatedFrameFields ??= []);
  let deflatedRest = deflatedFields[deflate.windowBits];
  if (deflatedRest === undefined) {
    // Counted here, where the deflating happens: once per response and window, whatever the ids.
    deflate.counter.inc();
    deflatedRest = deflateMessage(fields, deflate.windowBits);
    deflatedFields[deflate.windowBits] = deflatedRest;
  }
  return webSocketBinaryFrame(compressedMessage(prefix, deflatedRest), true);
}
