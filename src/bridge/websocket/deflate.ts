import { constants, deflateRawSync } from "node:zlib";
import type { PerMessageDeflateOptions } from "ws";
import { webSocketBinaryFrame } from "./frames.js";

/**
 * permessage-deflate (RFC 7692) for server-to-client messages, which the
 * outbox frames itself instead of ws's `send`. The server always negotiates
 * `server_no_context_takeover` (§7.1.1.1): each message is then compressed
 * from an empty window, so its compressed form depends only on its bytes and
 * the window size, and a message fanned out to many sockets is deflated once
 * per window size: only the few bytes that name each socket's call id are
 * added per socket, uncompressed (`compressedMessage`).
 * Client-to-server messages are inflated by ws's Receiver, which applies
 * `maxPayload` to the inflated size (a decompression bomb closes with 1009).
 */

/** What one socket negotiated: how its server messages are compressed. */
export interface WebSocketDeflate {
  /** `server_max_window_bits` (9 to 15): the LZ77 window the client inflates with. */
  readonly windowBits: number;
  /** Messages shorter than this go uncompressed (RSV1 clear), which the extension allows per message (§6). */
  readonly threshold: number;
  /** Counts each message actually deflated (metrics; once per fanned-out message and window size, not per socket). */
  readonly counter: { inc(): void };
}

/** ws's `perMessageDeflate` option: what the server offers and can honour. */
export function perMessageDeflateOptions(threshold: number): PerMessageDeflateOptions {
  return {
    // Required: without it each socket's compressor would carry its own history and nothing could be shared.
    serverNoContextTakeover: true,
    // ws uses it for its own sends only (none carry data here); the outbox applies the same threshold.
    threshold,
  };
}

/**
 * The socket's deflate parameters from the `Sec-WebSocket-Extensions` value
 * of the server's handshake answer (as ws formats it, for example
 * `permessage-deflate; server_no_context_takeover; server_max_window_bits=10`),
 * or undefined when messages to it go uncompressed: nothing negotiated, no
 * `server_no_context_takeover`, or a window of 8 bits, which zlib cannot
 * produce for raw deflate (it raises 8 to 9, which a client with a 256-byte
 * window might not inflate).
 */
export function negotiatedDeflate(answer: string | undefined, threshold: number, counter: WebSocketDeflate["counter"]): WebSocketDeflate | undefined {
  if (answer === undefined) return undefined;
  const [name, ...params] = answer.split(";").map((part) => part.trim());
  if (name !== "permessage-deflate") return undefined;
  let noContextTakeover = false;
  let windowBits = 15; // RFC 7692 §7.1.2.1: no server_max_window_bits means the full 32 KiB window
  for (const param of params) {
    const [key, value] = param.split("=").map((part) => part.trim());
    if (key === "server_no_context_takeover") noContextTakeover = true;
    else if (key === "server_max_window_bits") windowBits = Number(value);
  }
  if (!noContextTakeover || !(windowBits >= 9 && windowBits <= 15)) return undefined;
  return { windowBits, threshold, counter };
}

/**
 * The wire frame of `payload` for a socket: compressed with RSV1 set when the
 * socket negotiated permessage-deflate and the payload reaches the threshold,
 * a plain binary frame otherwise.
 */
export function outgoingFrame(payload: Uint8Array, deflate: WebSocketDeflate | undefined): Buffer {
  if (deflate === undefined || payload.length < deflate.threshold) return webSocketBinaryFrame(payload);
  deflate.counter.inc();
  return webSocketBinaryFrame(deflateMessage(payload, deflate.windowBits), true);
}

/**
 * One message compressed as RFC 7692 §7.2.1 says: raw DEFLATE from a fresh
 * window, ended with a sync flush, whose trailing empty block
 * (0x00 0x00 0xff 0xff) is removed. Synchronous, so frames keep their order
 * in the outbox (the cost is once per message, whatever the number of
 * sockets; a compressor kept per socket would hold some 256 KiB).
 */
export function deflateMessage(payload: Uint8Array, windowBits: number): Buffer {
  const compressed = deflateRawSync(payload, { windowBits, finishFlush: constants.Z_SYNC_FLUSH });
  return compressed.subarray(0, compressed.length - 4);
}

/**
 * The permessage-deflate data of a message made of `prefix` then bytes whose
 * `deflateMessage` form is `deflatedRest`: `prefix` as one non-final STORED
 * block (RFC 1951 §3.2.4: at a byte boundary, the header byte 0x00 then LEN
 * and NLEN, 16-bit little-endian), then `deflatedRest` as is. It inflates to
 * prefix and rest: the rest's blocks start at a byte boundary, and as it was
 * compressed from an empty window its back-references never reach into the
 * prefix. This lets a fanned-out message whose first bytes differ per socket
 * (the call id) be deflated once: only the few prefix bytes are per socket.
 */
export function compressedMessage(prefix: Uint8Array, deflatedRest: Uint8Array): Buffer {
  // Prefixes here are at most 12 bytes; a stored block holds up to 65,535.
  if (prefix.length > 0xffff) throw new RangeError(`stored block of ${prefix.length} bytes`);
  const data = Buffer.allocUnsafe(5 + prefix.length + deflatedRest.length);
  data[0] = 0x00; // BFINAL 0, BTYPE 00 (stored); the rest of the byte is padding
  data.writeUInt16LE(prefix.length, 1);
  data.writeUInt16LE(~prefix.length & 0xffff, 3);
  data.set(prefix, 5);
  data.set(deflatedRest, 5 + prefix.length);
  return data;
}
