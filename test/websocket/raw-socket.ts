import { subscribe as subscribeChannel, unsubscribe as unsubscribeChannel } from "node:diagnostics_channel";
import type { Duplex } from "node:stream";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { ClientFrameSchema, ServerFrameSchema, type ServerFrame } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { websocketOpenChannel } from "../../src/bridge/websocket/bridge.js";

/** What a raw socket saw for one call: its messages (decoded) and its end. */
export interface CallResult<T> {
  readonly messages: T[];
  readonly cursors: string[];
  readonly error: { code: string; message: string } | undefined;
  /** Whether the call's `end` frame arrived (false when `until` stopped at `count`). */
  readonly ended: boolean;
}

/** A `ws` client speaking raw rivulet.bridge.v1 frames, for tests. */
export interface RawSocket {
  readonly socket: WebSocket;
  /** Sends a ClientFrame. */
  send(frame: MessageInitShape<typeof ClientFrameSchema>): void;
  /** Sends raw bytes as one binary (or text) WebSocket message. */
  sendRaw(data: Uint8Array | string): void;
  /** Starts a call: `request` is encoded with `schema`. */
  call<I extends DescMessage>(id: number, method: string, schema: I, request: MessageInitShape<I>, headers?: Record<string, string>): void;
  /** The next frame that belongs to no call (pong). */
  nextControl(): Promise<ServerFrame>;
  /** Frames of call `id` until its end (or until `count` messages), decoding payloads with `schema`. */
  until<O extends DescMessage>(id: number, schema: O, count?: number): Promise<CallResult<MessageShape<O>>>;
  /** Every frame received so far, in order (to assert what never arrived). */
  readonly log: readonly ServerFrame[];
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** With `recordWire`: every WebSocket frame the server sent, as it came off the TCP socket (before ws inflates it). */
  readonly wire: readonly WireFrame[];
  /** The `Sec-WebSocket-Extensions` of the server's handshake answer, if any. */
  readonly extensionsAnswer: string | undefined;
  close(): void;
}

/** One server-to-client WebSocket frame as sent (RFC 6455 §5.2; server frames are not masked). */
export interface WireFrame {
  readonly fin: boolean;
  /** Set on permessage-deflate compressed messages (RFC 7692 §6.1). */
  readonly rsv1: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Splits the server's byte stream into frames as it arrives; a frame cut across TCP chunks waits for its rest. */
function createWireParser(onFrame: (frame: WireFrame) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < 2) return;
      let length = pending[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (pending.length < 4) return;
        length = pending.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (pending.length < 10) return;
        length = Number(pending.readBigUInt64BE(2));
        at = 10;
      }
      if (pending.length < at + length) return;
      const first = pending[0]!;
      onFrame({ fin: (first & 0x80) !== 0, rsv1: (first & 0x40) !== 0, opcode: first & 0x0f, payload: pending.subarray(at, at + length) });
      pending = pending.subarray(at + length);
    }
  };
}

/** A queue of frames with one waiter at a time. */
class FrameQueue {
  private readonly frames: ServerFrame[] = [];
  private waiter: ((frame: ServerFrame) => void) | undefined;
  push(frame: ServerFrame): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter(frame);
    else this.frames.push(frame);
  }
  next(): Promise<ServerFrame> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

/**
 * Opens `ws://…/ws` with the rivulet.v1 subprotocol (unless other `protocols` are given) and waits for it to open.
 * `deflate` offers permessage-deflate (ws's default offer); `recordWire` keeps the raw frames the server sent.
 */
export async function openRawSocket(
  baseUrl: string,
  options: { token?: string; protocols?: string[]; origin?: string; headers?: Record<string, string>; deflate?: boolean; recordWire?: boolean } = {},
): Promise<RawSocket> {
  const url = new URL("/ws", baseUrl.replace(/^http/, "ws"));
  if (options.token) url.searchParams.set("access_token", options.token);
  const socket = new WebSocket(url, options.protocols ?? ["rivulet.v1"], {
    origin: options.origin,
    headers: options.headers,
    perMessageDeflate: options.deflate ?? false,
  });
  const wire: WireFrame[] = [];
  let extensionsAnswer: string | undefined;
  socket.once("upgrade", (res) => {
    extensionsAnswer = res.headers["sec-websocket-extensions"];
    // A second 'data' listener on the TCP socket ws reads: it sees the same chunks, compressed frames included.
    if (options.recordWire)
      res.socket.on(
        "data",
        createWireParser((frame) => wire.push(frame)),
      );
  });
  const control = new FrameQueue();
  const perCall = new Map<number, FrameQueue>();
  const queueOf = (id: number) => {
    let queue = perCall.get(id);
    if (!queue) perCall.set(id, (queue = new FrameQueue()));
    return queue;
  };
  const log: ServerFrame[] = [];
  socket.binaryType = "nodebuffer";
  socket.on("message", (data: Buffer) => {
    const frame = fromBinary(ServerFrameSchema, data);
    log.push(frame);
    if (frame.kind.case === "message" || frame.kind.case === "end") queueOf(frame.kind.value.id).push(frame);
    else control.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
      res.on("end", () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
    });
    socket.once("error", reject);
  });
  return {
    socket,
    closed,
    log,
    wire,
    get extensionsAnswer() {
      return extensionsAnswer;
    },
    send(frame) {
      socket.send(toBinary(ClientFrameSchema, create(ClientFrameSchema, frame)));
    },
    sendRaw(data) {
      socket.send(data, { binary: typeof data !== "string" });
    },
    call(id, method, schema, request, headers = {}) {
      const bytes = toBinary(schema, create(schema, request));
      socket.send(toBinary(ClientFrameSchema, create(ClientFrameSchema, { kind: { case: "call", value: { id, method, request: bytes, headers } } })));
    },
    nextControl: () => control.next(),
    async until(id, schema, count) {
      const messages: MessageShape<typeof schema>[] = [];
      const cursors: string[] = [];
      const queue = queueOf(id);
      for (;;) {
        if (count !== undefined && messages.length >= count) return { messages, cursors, error: undefined, ended: false };
        const frame = await queue.next();
        if (frame.kind.case === "message") {
          messages.push(fromBinary(schema, frame.kind.value.payload));
          cursors.push(frame.kind.value.cursor);
        } else if (frame.kind.case === "end") {
          const error = frame.kind.value.error;
          return { messages, cursors, error: error ? { code: error.code, message: error.message } : undefined, ended: true };
        }
      }
    },
    close() {
      socket.close();
    },
  };
}

/** A raw client socket and the server's side of it: its `ws` socket (to see its buffered bytes) and its TCP socket. */
export async function openWatchedRawSocket(baseUrl: string, token: string): Promise<{ socket: RawSocket; serverSocket: WebSocket; serverTransport: Duplex }> {
  let serverSocket: WebSocket | undefined;
  let serverTransport: Duplex | undefined;
  const onOpen = (message: unknown) => ({ socket: serverSocket, transport: serverTransport } = message as { socket: WebSocket; transport: Duplex });
  subscribeChannel(websocketOpenChannel.name, onOpen);
  try {
    const socket = await openRawSocket(baseUrl, { token });
    return { socket, serverSocket: serverSocket!, serverTransport: serverTransport! };
  } finally {
    unsubscribeChannel(websocketOpenChannel.name, onOpen);
  }
}
