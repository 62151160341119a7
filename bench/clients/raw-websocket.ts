import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { constants, inflateRawSync } from "node:zlib";
import type { MarkerScanner } from "../lib/marker.js";

/** What a raw WebSocket connection offers its protocol (the target's subscribe logic). */
export interface WebSocketSender {
  /** Sends one frame (opcode 1 text, 2 binary). */
  send(opcode: 1 | 2, payload: Uint8Array): void;
}

/** Where to connect, the handshake, and the protocol's hooks. */
export interface WebSocketOptions {
  readonly port: number;
  readonly localAddress: string;
  readonly path: string;
  readonly protocol?: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly scanner: MarkerScanner;
  readonly now: () => number;
  /** After the 101: subscribe. */
  readonly onOpen: (sender: WebSocketSender) => void;
  /** Each text frame, for protocols that talk back (Socket.IO's heartbeat). */
  readonly onText?: (text: string, sender: WebSocketSender) => void;
  readonly onEnd: (reason: string) => void;
  /**
   * Offers permessage-deflate and inflates compressed (RSV1) messages before scanning them. Only for a server that
   * answers with server_no_context_takeover (Rivulet does): each message is then inflated on its own.
   */
  readonly deflate?: boolean;
}

/** RFC 7692 §7.2.2: the empty block the sender removed from each compressed message. */
const deflateTail = Buffer.from([0x00, 0x00, 0xff, 0xff]);

const maskedZeroKey = Buffer.from([0, 0, 0, 0]);

/** A client frame (RFC 6455 §5.2), masked with an all-zero key so the payload goes out unchanged. */
function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const header =
    length < 126
      ? Buffer.from([0x80 | opcode, 0x80 | length])
      : length < 65_536
        ? Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff])
        : undefined;
  if (!header) throw new Error("client frames on the bench stay under 64 KiB");
  return Buffer.concat([header, maskedZeroKey, payload]);
}

/**
 * A lean WebSocket client for the load generator: a hand-made upgrade, a frame
 * parser that answers pings and hands each data frame's payload to a marker
 * scanner. Server frames are unmasked, so payload bytes are read in place.
 * Written by hand for the same reason as raw-h2.ts.
 */
export function openWebSocket(options: WebSocketOptions): Socket {
  const socket = connect({ port: options.port, host: "127.0.0.1", localAddress: options.localAddress });
  socket.setNoDelay(true);
  let ended = false;
  const end = (reason: string) => {
    if (ended) return;
    ended = true;
    options.onEnd(reason);
  };
  const sender: WebSocketSender = { send: (opcode, payload) => socket.write(clientFrame(opcode, payload)) };
  const head = [
    `GET ${options.path} HTTP/1.1`,
    `host: 127.0.0.1:${options.port}`,
    "upgrade: websocket",
    "connection: Upgrade",
    `sec-websocket-key: ${randomBytes(16).toString("base64")}`,
    "sec-websocket-version: 13",
    ...(options.protocol ? [`sec-websocket-protocol: ${options.protocol}`] : []),
    ...(options.deflate ? ["sec-websocket-extensions: permessage-deflate"] : []),
    ...options.headers.map(([n, v]) => `${n}: ${v}`),
  ];
  socket.write(`${head.join("\r\n")}\r\n\r\n`);
  let headerText: string | undefined = "";
  let pending: Buffer | undefined;
  const onFrames = (chunk: Buffer) => {
    const now = options.now();
    const data = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    let offset = 0;
    while (data.length - offset >= 2) {
      const opcode = data[offset]! & 0x0f;
      let length = data[offset + 1]! & 0x7f;
      let start = offset + 2;
      if (length === 126) {
        if (data.length - offset < 4) break;
        length = data.readUInt16BE(offset + 2);
        start = offset + 4;
      } else if (length === 127) {
        if (data.length - offset < 10) break;
        length = Number(data.readBigUInt64BE(offset + 2));
        start = offset + 10;
      }
      if (data.length < start + length) break;
      const compressed = (data[offset]! & 0x40) !== 0;
      const payload = compressed
        ? inflateRawSync(Buffer.concat([data.subarray(start, start + length), deflateTail]), { finishFlush: constants.Z_SYNC_FLUSH })
        : data.subarray(start, start + length);
      switch (opcode) {
        case 0x0:
        case 0x2:
          options.scanner.scan(payload, now);
          break;
        case 0x1:
          options.scanner.scan(payload, now);
          options.onText?.(payload.toString("utf8"), sender);
          break;
        case 0x8:
          end(`closed by server (${length >= 2 ? payload.readUInt16BE(0) : "no code"})`);
          socket.end();
          break;
        case 0x9:
          socket.write(clientFrame(0xa, payload));
          break;
      }
      offset = start + length;
    }
    if (offset < data.length) pending = Buffer.from(data.subarray(offset));
  };
  socket.on("data", (chunk: Buffer) => {
    if (headerText === undefined) {
      onFrames(chunk);
      return;
    }
    headerText += chunk.toString("latin1");
    const endOfHead = headerText.indexOf("\r\n\r\n");
    if (endOfHead === -1) return;
    const statusLine = headerText.slice(0, headerText.indexOf("\r\n"));
    if (!/^HTTP\/1\.1 101 /.test(statusLine)) {
      end(statusLine);
      socket.destroy();
      return;
    }
    // Bytes after the head (latin1: one byte per character) are the start of the body.
    const rest = headerText.length - (endOfHead + 4);
    headerText = undefined;
    options.onOpen(sender);
    if (rest > 0) onFrames(chunk.subarray(chunk.length - rest));
  });
  socket.on("error", (error) => end(error.message));
  socket.on("close", () => end("closed"));
  return socket;
}
