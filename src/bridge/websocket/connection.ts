import type { Duplex } from "node:stream";
import { fromBinary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { WebSocket } from "ws";
import type { Call } from "../../../gen/rivulet/bridge/v1/bridge_pb.js";
import { bearerAuthorization } from "../../auth/credentials.js";
import type { Logger } from "../../log.js";
import type { Metrics } from "../../metrics.js";
import type { ResponseSink } from "../../call/response-sink.js";
import { DetachableCall } from "../../call/detachable-call.js";
import { callEnded, type BridgeMethod } from "../../call/method-registry.js";
import { ConnectionCredentials } from "../../call/connection-credentials.js";
import { WebSocketCloseCode } from "../../wire/websocket-close-codes.js";
import { publicError } from "../../call/public-error.js";
import { errorJson } from "../../wire/error-json.js";
import { outgoingFrame, type WebSocketDeflate } from "./deflate.js";
import { decodeClientFrame, encodeEndFrame, encodePongFrame, WebSocketFrameError } from "./frames.js";
import { createWebSocketLiveness, type WebSocketLiveness } from "./liveness.js";
import { messageFrameOf } from "./message-frame.js";
import { createWebSocketOutbox } from "./outbox.js";
import type { BatchedWriter } from "../../http/batched-writer.js";

/** What every socket of one bridge shares: one object, not a copy per socket. */
export interface WebSocketConnectionShared {
  readonly methods: ReadonlyMap<string, BridgeMethod>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly limits: {
    readonly maxCalls: number;
    readonly maxMessageBytes: number;
    readonly maxBufferedBytes: number;
    /** How long a peer that stopped reading (its pings stuck behind its backlog) is kept before it is closed with 1008. */
    readonly maxStallMs: number;
  };
  /** Called once per socket, after it closed and every call was released. */
  readonly onClosed: (connection: WebSocketConnection) => void;
}

/** What one socket brings: the ws socket, the bytes under it, and what its handshake said. */
export interface WebSocketConnectionOptions {
  readonly socket: RivuletWebSocket;
  /** The TCP (or TLS) socket under `socket`: the outbox writes each batch of frames to it in one write, and its `drain` ends backpressure. */
  readonly transport: Duplex;
  /** How messages to this socket are compressed (permessage-deflate), or undefined to send them plain. */
  readonly deflate: WebSocketDeflate | undefined;
  /** The handshake's bearer token (header, cookie or `access_token`), used by calls that carry none. */
  readonly handshakeToken: string | undefined;
  /** The handshake URL with credentials redacted: what handlers see as the request URL. */
  readonly url: string;
}

/** One open `GET /ws` socket: its calls, its outgoing queue and its liveness. */
export interface WebSocketConnection {
  /** Number of calls open now. */
  readonly openCalls: number;
  /** When the last call ended (or the socket opened) while no call is open; undefined while calls are open. */
  readonly idleSince: number | undefined;
  /**
   * One heartbeat round (shared timer): pings, terminates a silent peer that
   * did not answer the previous ping, or closes one that stopped reading
   * (see websocket-liveness.ts).
   */
  heartbeat(): void;
  /** Sends what is queued, then closes with `code`; open calls are released without `end` frames. */
  close(code: number, reason: string): void;
}

/**
 * ws's socket with a slot for its connection (the bridge passes this class
 * to ws's server as `WebSocket`): the socket's listeners are then functions
 * shared by every socket, each finding its connection through `this`,
 * instead of closures per socket.
 */
export class RivuletWebSocket extends WebSocket {
  connection: Connection | undefined = undefined;
}

const transport = "websocket";
/** RFC 6455 §5.5: a control frame's payload, the close reason included, is at most 125 bytes (2 go to the code). */
const maxCloseReasonBytes = 123;

/**
 * Serves one socket: decodes client frames, runs calls through the bridge's
 * method registry, and writes server frames through its outbox (batched
 * writes, bounded buffering).
 */
export function createWebSocketConnection(shared: WebSocketConnectionShared, options: WebSocketConnectionOptions): WebSocketConnection {
  const connection = new Connection(shared, options);
  const { socket } = options;
  socket.connection = connection;
  socket.on("message", onSocketMessage);
  // Only the peer's pongs count as an answer (its frames only show it is there). A 'drain' means the kernel
  // took the bytes, not that the peer read them: loopback buffers grow to
  // megabytes, so a paused reader's backlog drains, and counting that as an
  // answer had it cut (1006) with its end frames still unread.
  socket.on("pong", onSocketPong);
  // ws emits errors (oversized frames: 1009, bad framing: 1002) and then closes the socket itself.
  socket.on("error", onSocketError);
  // The outbox discards what is queued itself: it listens to 'close' too, and first.
  socket.on("close", onSocketClose);
  return connection;
}

// The socket listeners, shared by every socket: `this` is the socket, always a RivuletWebSocket (the bridge's ws server makes only those).
function connectionOf(socket: WebSocket): Connection | undefined {
  return (socket as RivuletWebSocket).connection;
}
function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  connectionOf(this)?.onMessage(data, isBinary);
}
function onSocketPong(this: WebSocket): void {
  connectionOf(this)?.answered();
}
function onSocketError(this: WebSocket, error: Error): void {
  connectionOf(this)?.shared.logger.debug({ err: error }, "websocket error");
}
function onSocketClose(this: WebSocket): void {
  connectionOf(this)?.onClose();
}

/**
 * One call on a socket, and its `ResponseSink`: a class, because an idle
 * subscriber keeps it for as long as its stream is open. Once its stream
 * detached (`detach`), the call keeps no AbortController or signal: a cancel
 * or the socket's end reaches the stream directly.
 */
class WebSocketCall extends DetachableCall implements ResponseSink {
  /** Set once the call ended on this socket (its `end` frame queued, or the socket gone): nothing more is sent for it. */
  closed = false;
  /** Conflated streams: the newest response not yet sent while the socket is congested. */
  pending: Message | undefined = undefined;
  /** Whether this call ever waited for the socket to drain (for the slow-consumer metric). */
  throttled = false;

  constructor(
    readonly id: number,
    readonly method: BridgeMethod,
    private readonly connection: Connection,
  ) {
    super();
  }

  send(response: Message): void {
    if (!this.closed) this.connection.sendResponse(this, response);
  }

  congested(): boolean {
    if (!this.connection.outbox.congested()) return false;
    this.throttled = true;
    return true;
  }

  drained(): Promise<void> {
    return this.connection.untilDrainedOrEnded(this);
  }

  protected ended(error: unknown): void {
    this.connection.finish(this, error);
  }

  /** Runs the call to its end: reads what the handler yields, then waits for a detached stream's `end`. */
  run(responses: AsyncIterable<Message>): void {
    this.connection.pull(this, responses).then(
      () => this.pulled(true, undefined),
      (error: unknown) => this.pulled(false, error ?? new Error("the call failed")),
    );
  }
}

/** The socket's connection: one object with its methods on the prototype (see RivuletWebSocket). */
class Connection implements WebSocketConnection {
  readonly calls = new Map<number, WebSocketCall>();
  readonly outbox: BatchedWriter;
  private readonly liveness: WebSocketLiveness;
  private closing = false;
  /**
   * Bytes the peer has surely read: those written before the last ping it
   * answered. A pong proves no more than that: one processed late (its ping
   * left before a backlog, the server was busy writing it) must not count the
   * backlog as read, or a paused reader whose backlog the kernel then took
   * looks dead and is cut (1006) with its end frames unread.
   */
  private writtenAtAnswer = 0;
  /** `outbox.writtenBytes` when the last ping was sent. */
  private writtenAtPing = 0;
  idleSince: number | undefined = Date.now();
  /** The credentials verified on this socket: a call with the same token is authenticated once per socket, not per call. */
  private readonly credentials = new ConnectionCredentials<unknown>();

  constructor(
    readonly shared: WebSocketConnectionShared,
    private readonly options: WebSocketConnectionOptions,
  ) {
    this.outbox = createWebSocketOutbox(options.socket, options.transport, shared.limits.maxBufferedBytes);
    this.liveness = createWebSocketLiveness(shared.limits.maxStallMs);
  }

  get openCalls(): number {
    return this.calls.size;
  }

  /** Queues a `ServerFrame` (end, pong) framed for this socket. */
  private enqueue(frame: Uint8Array): void {
    this.outbox.write(outgoingFrame(frame, this.options.deflate));
  }

  answered(): void {
    this.writtenAtAnswer = this.writtenAtPing;
    this.liveness.heard();
  }

  /** Waits for the socket to drain, or for the call to end (a cancel releases its stream at once, not at the next drain). */
  untilDrainedOrEnded(call: WebSocketCall): Promise<void> {
    if (call.closed) return Promise.resolve();
    const { signal } = call;
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done);
      void this.outbox.drained().then(done);
    });
  }

  sendResponse(call: WebSocketCall, response: Message): void {
    this.outbox.write(messageFrameOf(call.method.method.output, response, call.id, this.options.deflate));
    deliveriesOf(this.shared.metrics).inc();
  }

  /** Ends a call once: releases it and sends its `end` frame. */
  finish(call: WebSocketCall, reason?: unknown): void {
    if (call.closed) return;
    call.closed = true;
    this.calls.delete(call.id);
    call.cancel(callEnded);
    const { metrics, logger } = this.shared;
    if (call.method.kind === "server_streaming") metrics.streams.dec({ transport });
    if (this.calls.size === 0) this.idleSince = Date.now();
    if (reason === undefined) {
      this.enqueue(encodeEndFrame(call.id));
      return;
    }
    const { error, hidden } = publicError(reason);
    if (hidden !== undefined) logger.error({ err: hidden, method: call.method.method.name }, "websocket call failed");
    if (call.throttled && error.code === Code.ResourceExhausted) metrics.slowConsumersDropped.inc({ transport });
    this.enqueue(encodeEndFrame(call.id, errorJson(error)));
  }

  /**
   * Reads the call's responses into the outbox, at the pace the socket
   * drains. It returns before a detached stream's long wait: nothing then
   * holds the call's finished iterator chain (its handler context and the
   * interceptors' wrappers).
   */
  async pull(call: WebSocketCall, responses: AsyncIterable<Message>): Promise<void> {
    const streaming = call.method.kind === "server_streaming";
    const conflate = streaming && call.method.policy.slowConsumer === "conflate";
    for await (const response of responses) {
      if (call.closed) break;
      if (streaming && this.outbox.congested()) {
        call.throttled = true;
        if (conflate) {
          // Keep reading, keep only the newest: it is sent when the socket drains.
          if (call.pending === undefined) void this.outbox.drained().then(() => this.sendPending(call));
          call.pending = response;
          continue;
        }
        // Lossless: stop reading this stream until the socket drains; the method's
        // own bounded buffer ends it with resource_exhausted if it stays slow.
        await this.untilDrainedOrEnded(call);
        if (call.closed) break;
      }
      this.sendResponse(call, response);
    }
    if (call.pending !== undefined) {
      await this.untilDrainedOrEnded(call);
      this.sendPending(call);
    }
  }

  private sendPending(call: WebSocketCall): void {
    const response = call.pending;
    call.pending = undefined;
    if (response !== undefined && !call.closed) this.sendResponse(call, response);
  }

  private startCall(frame: Call): void {
    const { id } = frame;
    const { limits, methods, metrics } = this.shared;
    const refuse = (message: string, code: Code) => this.enqueue(encodeEndFrame(id, errorJson(new ConnectError(message, code))));
    if (id === 0) return refuse("call id must not be 0", Code.InvalidArgument);
    const existing = this.calls.get(id);
    if (existing) {
      // Both the open call and the new one end, with one `end`: no frame for this id follows it.
      return this.finish(existing, new ConnectError(`call id ${id} is already in use`, Code.InvalidArgument));
    }
    if (this.calls.size >= limits.maxCalls) return refuse(`more than ${limits.maxCalls} calls open on one socket`, Code.ResourceExhausted);
    const method = methods.get(frame.method.replace(/^\//, ""));
    if (!method) return refuse(`unknown method ${frame.method}`, Code.Unimplemented);
    if (frame.request.length > limits.maxMessageBytes) {
      return refuse(`request of ${frame.request.length} bytes exceeds the limit of ${limits.maxMessageBytes}`, Code.ResourceExhausted);
    }
    let input: Message;
    let header: Headers;
    try {
      input = fromBinary(method.method.input, frame.request);
    } catch {
      return refuse(`request is not a valid ${method.method.input.typeName}`, Code.InvalidArgument);
    }
    try {
      header = new Headers(Object.entries(frame.headers));
    } catch {
      return refuse("call headers must be valid HTTP header names and values", Code.InvalidArgument);
    }
    // One auth interceptor for every transport: it reads `authorization`, so the handshake's token stands in.
    const { handshakeToken } = this.options;
    if (!header.has("authorization") && handshakeToken) header.set("authorization", bearerAuthorization(handshakeToken));

    const call = new WebSocketCall(id, method, this);
    this.calls.set(id, call);
    this.idleSince = undefined;
    if (method.kind === "server_streaming") metrics.streams.inc({ transport });
    let responses: AsyncIterable<Message>;
    try {
      responses = method.invoke(input, {
        protocolName: transport,
        requestMethod: "GET",
        url: this.options.url,
        requestHeader: header,
        signal: call.signal,
        // Topic streams hand fanned-out responses straight to the outbox; the pump below only sees the end.
        sink: method.kind === "server_streaming" ? call : undefined,
        connectionCredentials: this.credentials,
      });
    } catch (error) {
      return this.finish(call, error);
    }
    call.run(responses);
  }

  private onFrame(data: Uint8Array): void {
    const frame = decodeClientFrame(data);
    switch (frame.kind.case) {
      case "call":
        return this.startCall(frame.kind.value);
      case "cancel": {
        const call = this.calls.get(frame.kind.value.id);
        // A cancel racing the call's own end finds nothing: the end is already on its way.
        if (call) this.finish(call, new ConnectError("canceled by the client", Code.Canceled));
        return;
      }
      case "ping":
        return this.enqueue(encodePongFrame(frame.kind.value.nonce));
      default:
        // An empty frame or a kind added after this server was built: ignored (forward compatibility).
        return;
    }
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    // A frame from the peer: it is there, though that says nothing of what it has read.
    this.liveness.heard();
    if (this.closing) return;
    // RFC 6455 §7.4.1: 1003 for a data type the endpoint cannot accept.
    if (!isBinary) return this.close(WebSocketCloseCode.unsupportedData, "text frames are not supported: send binary rivulet.bridge.v1.ClientFrame");
    try {
      this.onFrame(data);
    } catch (error) {
      if (error instanceof WebSocketFrameError) return this.close(error.closeCode, error.message);
      this.shared.logger.error({ err: error }, "websocket frame handling failed");
      return this.close(WebSocketCloseCode.internalError, "internal error");
    }
    // A client that sends (pings, unary calls) but does not read would grow the
    // outgoing buffer without bound: stop reading its frames until it drains.
    const { socket } = this.options;
    if (this.outbox.congested() && !socket.isPaused) {
      socket.pause();
      void this.outbox.drained().then(() => socket.resume());
    }
  }

  onClose(): void {
    this.closing = true;
    this.release();
    this.options.socket.connection = undefined;
    this.shared.onClosed(this);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.outbox.flush();
    this.outbox.discard();
    this.closing = true;
    this.release();
    this.options.socket.close(code, truncate(reason));
  }

  /**
   * The peer stopped reading: each open call ends with resource_exhausted, its
   * `end` frame queued behind what the peer has not read (a few bytes per
   * call), and the close code says why. A peer that reads again before ws's
   * close timeout (30 s) finds both; its lossless streams resume from their
   * last cursor.
   */
  private closeTooSlow(): void {
    this.shared.logger.debug({ buffered: this.options.socket.bufferedAmount }, "websocket peer stopped reading: closing");
    for (const call of [...this.calls.values()]) {
      this.finish(call, new ConnectError("subscriber too slow: the connection stopped draining; resume from the last cursor", Code.ResourceExhausted));
    }
    this.close(WebSocketCloseCode.policyViolation, "too slow: the client stopped reading");
  }

  /** Aborts every call without `end` frames: the socket is gone or going. */
  private release(): void {
    const { metrics } = this.shared;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const call of calls) {
      call.closed = true;
      call.cancel(callEnded);
      if (call.method.kind === "server_streaming") metrics.streams.dec({ transport });
    }
  }

  heartbeat(): void {
    const { socket } = this.options;
    // Frames sent since the ping the peer last answered may stand between it and our ping
    // (ws's bufferedAmount: bytes the server still holds, the kernel's buffers being full).
    const receiving = this.outbox.writtenBytes !== this.writtenAtAnswer || socket.bufferedAmount > 0;
    switch (this.liveness.round(Date.now(), receiving)) {
      case "ping":
        if (socket.readyState !== socket.OPEN) return;
        this.writtenAtPing = this.outbox.writtenBytes;
        socket.ping();
        return;
      case "wait":
        return;
      case "terminate":
        this.shared.logger.debug("websocket peer did not answer a ping: terminating");
        socket.terminate();
        return;
      case "too-slow":
        return this.closeTooSlow();
    }
  }
}

/** The deliveries counter's WebSocket child, looked up once per registry: `inc({ transport })` hashes the labels on every delivery. */
const deliveriesChildren = new WeakMap<Metrics, { inc(): void }>();
function deliveriesOf(metrics: Metrics): { inc(): void } {
  let child = deliveriesChildren.get(metrics);
  if (child === undefined) {
    child = metrics.deliveries.labels({ transport });
    deliveriesChildren.set(metrics, child);
  }
  return child;
}

function truncate(reason: string): string {
  const bytes = Buffer.from(reason);
  return bytes.length <= maxCloseReasonBytes
    ? reason
    : bytes
        .subarray(0, maxCloseReasonBytes)
        .toString()
        .replace(/\uFFFD$/, "");
}
