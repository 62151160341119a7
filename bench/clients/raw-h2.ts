import { connect, type Socket } from "node:net";
import type { MarkerScanner } from "../lib/marker.js";

/**
 * A lean HTTP/2 reader for the load generator (RFC 9113): it opens streams with
 * literal HPACK headers, acknowledges SETTINGS and PING, keeps flow-control
 * windows open, and hands DATA payloads to a marker scanner. It decodes no
 * response headers and no messages, so thousands of subscribers cost the load
 * generator a fraction of what they cost the server. Written by hand because
 * node:http2's client (nghttp2 plus a stream object per subscriber) would make
 * the load generator, not the server, the bottleneck.
 */
export interface H2Stream {
  readonly headers: readonly (readonly [string, string])[];
  /** A request body, sent after the headers and ending the stream (POST); none ends it with the headers (GET). */
  readonly body?: Uint8Array;
}

/** Where to connect, which streams to open, and where their DATA goes. */
export interface H2ConnectionOptions {
  readonly port: number;
  readonly localAddress: string;
  readonly streams: readonly H2Stream[];
  readonly scanner: MarkerScanner;
  readonly now: () => number;
  /** Called once when the connection or any of its streams ends (the server ended or reset it, or the socket closed). */
  readonly onEnd: (reason: string) => void;
}

const frameData = 0x0,
  frameHeaders = 0x1,
  frameRstStream = 0x3,
  frameSettings = 0x4,
  framePing = 0x6,
  frameGoaway = 0x7,
  frameWindowUpdate = 0x8;
const flagEndStream = 0x1,
  flagAck = 0x1,
  flagEndHeaders = 0x4,
  flagPadded = 0x8;
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const maxWindow = 2 ** 31 - 1;
const refillAt = 2 ** 30;

function frame(type: number, flags: number, streamId: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInteger(value: number, prefixBits: number, firstByte: number): number[] {
  const limit = 2 ** prefixBits - 1;
  if (value < limit) return [firstByte | value];
  const bytes = [firstByte | limit];
  let rest = value - limit;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

/** A header block of "literal header field without indexing, new name" entries (RFC 7541 §6.2.2), no Huffman. */
export function encodeHeaderBlock(headers: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const nameBytes = Buffer.from(name, "latin1");
    const valueBytes = Buffer.from(value, "latin1");
    parts.push(Buffer.from([0x00, ...hpackInteger(nameBytes.length, 7, 0)]), nameBytes, Buffer.from(hpackInteger(valueBytes.length, 7, 0)), valueBytes);
  }
  return Buffer.concat(parts);
}

function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment, 0);
  return frame(frameWindowUpdate, 0, streamId, payload);
}

/** Opens one HTTP/2 connection with the given streams; returns its socket (destroy it to close). */
export function openH2Connection(options: H2ConnectionOptions): Socket {
  const socket = connect({ port: options.port, host: "127.0.0.1", localAddress: options.localAddress });
  socket.setNoDelay(true);
  let ended = false;
  const end = (reason: string) => {
    if (ended) return;
    ended = true;
    options.onEnd(reason);
  };
  const settings = Buffer.alloc(12);
  settings.writeUInt16BE(0x2, 0); // ENABLE_PUSH
  settings.writeUInt32BE(0, 2);
  settings.writeUInt16BE(0x4, 6); // INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(maxWindow, 8);
  const opening: Buffer[] = [preface, frame(frameSettings, 0, 0, settings), windowUpdate(0, maxWindow - 65_535)];
  options.streams.forEach((stream, index) => {
    const id = 1 + 2 * index;
    const block = encodeHeaderBlock(stream.headers);
    opening.push(frame(frameHeaders, flagEndHeaders | (stream.body ? 0 : flagEndStream), id, block));
    if (stream.body) opening.push(frame(frameData, flagEndStream, id, stream.body));
  });
  socket.write(Buffer.concat(opening));

  let pending: Buffer | undefined;
  let connectionConsumed = 0;
  const streamConsumed = new Map<number, number>();
  socket.on("data", (chunk: Buffer) => {
    const now = options.now();
    const data = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    let offset = 0;
    while (data.length - offset >= 9) {
      const length = data.readUIntBE(offset, 3);
      if (data.length - offset < 9 + length) break;
      const type = data[offset + 3]!;
      const flags = data[offset + 4]!;
      const streamId = data.readUInt32BE(offset + 5) & 0x7fffffff;
      const payloadStart = offset + 9;
      const payloadEnd = payloadStart + length;
      switch (type) {
        case frameData: {
          const padding = flags & flagPadded ? data[payloadStart]! + 1 : 0;
          options.scanner.scan(data.subarray(payloadStart + (padding ? 1 : 0), payloadEnd - (padding ? padding - 1 : 0)), now);
          connectionConsumed += length;
          const consumed = (streamConsumed.get(streamId) ?? 0) + length;
          streamConsumed.set(streamId, consumed);
          if (connectionConsumed >= refillAt) {
            socket.write(windowUpdate(0, connectionConsumed));
            connectionConsumed = 0;
          }
          if (consumed >= refillAt) {
            socket.write(windowUpdate(streamId, consumed));
            streamConsumed.set(streamId, 0);
          }
          if (flags & flagEndStream) end(`stream ${streamId} ended`);
          break;
        }
        case frameHeaders:
          if (flags & flagEndStream) end(`stream ${streamId} ended (trailers)`);
          break;
        case frameRstStream:
          end(`stream ${streamId} reset (code ${data.readUInt32BE(payloadStart)})`);
          break;
        case frameSettings:
          if (!(flags & flagAck)) socket.write(frame(frameSettings, flagAck, 0, Buffer.alloc(0)));
          break;
        case framePing:
          if (!(flags & flagAck)) socket.write(frame(framePing, flagAck, 0, data.subarray(payloadStart, payloadEnd)));
          break;
        case frameGoaway:
          end("goaway");
          break;
      }
      offset = payloadEnd;
    }
    if (offset < data.length) pending = Buffer.from(data.subarray(offset));
  });
  socket.on("error", (error) => end(error.message));
  socket.on("close", () => end("closed"));
  return socket;
}
