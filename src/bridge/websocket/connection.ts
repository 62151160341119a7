import type { Duplex } from "node:stream";
import { fromBinary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { WebSocket } from "ws";
import type { Call } from "../../../gen/rivulet/bridge/v1/bridge_pb.js";
import { bearerAuthorization } from "../../auth/credentials.js";
import type { Logger } from "../../log.js";
import type { Metrics } from "../../metrics.js";
import type { ResponseSink } from "../../call/response-sink.js";
import { callEnded, type BridgeMethod } from "../../call/method-registry.js";
import { WebSocketCloseCode } from "../../wire/websocket-close-codes.js";
import { publicError } from "../../call/public-error.js";
import { errorJson } from "../../wire/error-json.js";
import { outgoingFrame, type WebSocketDeflate } from "./deflate.js";
import { decodeClientFrame, encodeEndFrame, encodePongFrame, WebSocketFrameError } from "./frames.js";
import { createWebSocketLiveness } from "./liveness.js";
import { messageFrameOf } from "./message-frame.js";
import { createWebSocketOutbox } from "./outbox.js";

/** What one socket needs from the bridge. */
export interface WebSocketConnectionOptions {
  readonly socket: WebSocket;
  /** The TCP (or TLS) socket under `socket`: the outbox writes each batch of frames to it in one write, and its `drain` ends backpressure. */
  readonly transport: Duplex;
  readonly methods: ReadonlyMap<string, BridgeMethod>;
  /** How messages to this socket are compressed (permessage-deflate), or undefined to send them plain. */
  readonly deflate: WebSocketDeflate | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly limits: {
    readonly maxCalls: number;
    readonly maxMessageBytes: number;
    readonly maxBufferedBytes: number;
    /** How long a peer that stopped reading (its pings stuck behind its backlog) is kept before it is closed with 1008. */
    readonly maxStallMs: number;
  };
  /** The handshake's bearer token (header, cookie or `access_token`), used by calls that carry none. */
  readonly handshakeToken: string | undefined;
  /** The handshake URL with credentials redacted: what handlers see as the request URL. */
  readonly url: string;
  /** Called once, after the socket closed and every call was released. */
  readonly onClosed: () => void;
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

interface CallState {
  readonly id: number;
  readonly method: BridgeMethod;
  readonly controller: AbortController;
  ended: boolean;
  /** Conflated streams: the newest response not yet sent while the socket is congested. */
  pending: Message | undefined;
  /** Whether this call ever waited for the socket to drain (for the slow-consumer metric). */
  throttled: boolean;
  /** Set when the stream outlived its handler (ResponseSink.detach): the call ends when this settles. */
  detached: Promise<void> | undefined;
}

const transport = "websocket";
/** RFC 6455 §5.5: a control frame's payload, the close reason included, is at most 125 bytes (2 go to the code). */
const maxCloseReasonBytes = 123;

/**
 * Serves one socket: decodes client frames, runs calls through the bridge's
 * method registry, and writes server frames through its outbox (batched
 * writes, bounded buffering).
 */
export function createWebSocketConnection(options: WebSocketConnectionOptions): WebSocketConnection {
  const { socket, limits, logger, metrics } = options;
  const calls = new Map<number, CallState>();
  // The labelled child, looked up once: `inc({ transport })` hashes the labels on every delivery.
  const deliveries = metrics.deliveries.labels({ transport });
  const outbox = createWebSocketOutbox(socket, options.transport, limits.maxBufferedBytes);
  /** Queues a `ServerFrame` (end, pong) framed for this socket. */
  const enqueue = (frame: Uint8Array) => outbox.write(outgoingFrame(frame, options.deflate));
  const congested = () => outbox.congested();
  const waitForDrain = () => outbox.drained();
  let closing = false;
  const liveness = createWebSocketLiveness(limits.maxStallMs);
  /**
   * Bytes the peer has surely read: those written before the last ping it
   * answered. A pong proves no more than that: one processed late (its ping
   * left before a backlog, the server was busy writing it) must not count the
   * backlog as read, or a paused reader whose backlog the kernel then took
   * looks dead and is cut (1006) with its end frames unread.
   */
  let writtenAtAnswer = 0;
  /** `outbox.writtenBytes` when the last ping was sent. */
  let writtenAtPing = 0;
  /** A frame from the peer: it is there, though that says nothing of what it has read. */
  const heard = () => liveness.heard();
  const answered = () => {
    writtenAtAnswer = writtenAtPing;
    liveness.heard();
  };
  let idleSince: number | undefined = Date.now();

  /** Waits for the socket to drain, or for the call to end (a cancel releases its stream at once, not at the next drain). */
  function untilDrainedOrEnded(call: CallState): Promise<void> {
    const { signal } = call.controller;
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done);
      void waitForDrain().then(done);
    });
  }

  function sendResponse(call: CallState, response: Message): void {
    outbox.write(messageFrameOf(call.method.method.output, response, call.id, options.deflate));
    deliveries.inc();
  }

  /** Ends a call once: releases it and sends its `end` frame. */
  function finish(call: CallState, reason?: unknown): void {
    if (call.ended) return;
    call.ended = true;
    calls.delete(call.id);
    call.controller.abort(callEnded);
    if (call.method.kind === "server_streaming") metrics.streams.dec({ transport });
    if (calls.size === 0) idleSince = Date.now();
    if (reason === undefined) {
      enqueue(encodeEndFrame(call.id));
      return;
    }
    const { error, hidden } = publicError(reason);
    if (hidden !== undefined) logger.error({ err: hidden, method: call.method.method.name }, "websocket call failed");
    if (call.throttled && error.code === Code.ResourceExhausted) metrics.slowConsumersDropped.inc({ transport });
    enqueue(encodeEndFrame(call.id, errorJson(error)));
  }

  /**
   * Runs a call to its end and sends its `end` frame. The responses are read
   * in `pull`, which returns before a detached stream's long wait: nothing
   * then holds the call's finished iterator chain (its handler context and
   * the interceptors' wrappers).
   */
  function run(call: CallState, responses: AsyncIterable<Message>): void {
    pull(call, responses)
      .then(() => call.detached)
      .then(
        () => finish(call),
        (error: unknown) => finish(call, error),
      );
  }

  /** Reads the call's responses into the outbox, at the pace the socket drains. */
  async function pull(call: CallState, responses: AsyncIterable<Message>): Promise<void> {
    const streaming = call.method.kind === "server_streaming";
    const conflate = streaming && call.method.policy.slowConsumer === "conflate";
    for await (const response of responses) {
      if (call.ended) break;
      if (streaming && congested()) {
        call.throttled = true;
        if (conflate) {
          // Keep reading, keep only the newest: it is sent when the socket drains.
          if (call.pending === undefined) void waitForDrain().then(() => sendPending(call));
          call.pending = response;
          continue;
        }
        // Lossless: stop reading this stream until the socket drains; the method's
        // own bounded buffer ends it with resource_exhausted if it stays slow.
        await untilDrainedOrEnded(call);
        if (call.ended) break;
      }
      sendResponse(call, response);
    }
    if (call.pending !== undefined) {
      await untilDrainedOrEnded(call);
      sendPending(call);
    }
  }

  function sinkOf(call: CallState): ResponseSink {
    return {
      send(response) {
        if (!call.ended) sendResponse(call, response);
      },
      congested() {
        if (!congested()) return false;
        call.throttled = true;
        return true;
      },
      drained: () => untilDrainedOrEnded(call),
      signal: call.controller.signal,
      detach(ended) {
        call.detached = ended;
      },
    };
  }

  function sendPending(call: CallState): void {
    const response = call.pending;
    call.pending = undefined;
    if (response !== undefined && !call.ended) sendResponse(call, response);
  }

  function startCall(frame: Call): void {
    const { id } = frame;
    const refuse = (message: string, code: Code) => enqueue(encodeEndFrame(id, errorJson(new ConnectError(message, code))));
    if (id === 0) return refuse("call id must not be 0", Code.InvalidArgument);
    const existing = calls.get(id);
    if (existing) {
      // Both the open call and the new one end, with one `end`: no frame for this id follows it.
      return finish(existing, new ConnectError(`call id ${id} is already in use`, Code.InvalidArgument));
    }
    if (calls.size >= limits.maxCalls) return refuse(`more than ${limits.maxCalls} calls open on one socket`, Code.ResourceExhausted);
    const method = options.methods.get(frame.method.replace(/^\//, ""));
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
    if (!header.has("authorization") && options.handshakeToken) header.set("authorization", bearerAuthorization(options.handshakeToken));

    const call: CallState = { id, method, controller: new AbortController(), ended: false, pending: undefined, throttled: false, detached: undefined };
    calls.set(id, call);
    idleSince = undefined;
    if (method.kind === "server_streaming") metrics.streams.inc({ transport });
    let responses: AsyncIterable<Message>;
    try {
      responses = method.invoke(input, {
        protocolName: transport,
        requestMethod: "GET",
        url: options.url,
        requestHeader: header,
        signal: call.controller.signal,
        // Topic streams hand fanned-out responses straight to the outbox; the pump below only sees the end.
        sink: method.kind === "server_streaming" ? sinkOf(call) : undefined,
      });
    } catch (error) {
      return finish(call, error);
    }
    run(call, responses);
  }

  function onFrame(data: Uint8Array): void {
    const frame = decodeClientFrame(data);
    switch (frame.kind.case) {
      case "call":
        return startCall(frame.kind.value);
      case "cancel": {
        const call = calls.get(frame.kind.value.id);
        // A cancel racing the call's own end finds nothing: the end is already on its way.
        if (call) finish(call, new ConnectError("canceled by the client", Code.Canceled));
        return;
      }
      case "ping":
        return enqueue(encodePongFrame(frame.kind.value.nonce));
      default:
        // An empty frame or a kind added after this server was built: ignored (forward compatibility).
        return;
    }
  }

  function close(code: number, reason: string): void {
    if (closing) return;
    outbox.flush();
    outbox.discard();
    closing = true;
    release();
    socket.close(code, truncate(reason));
  }

  /**
   * The peer stopped reading: each open call ends with resource_exhausted, its
   * `end` frame queued behind what the peer has not read (a few bytes per
   * call), and the close code says why. A peer that reads again before ws's
   * close timeout (30 s) finds both; its lossless streams resume from their
   * last cursor.
   */
  function closeTooSlow(): void {
    logger.debug({ buffered: socket.bufferedAmount }, "websocket peer stopped reading: closing");
    for (const call of [...calls.values()]) {
      finish(call, new ConnectError("subscriber too slow: the connection stopped draining; resume from the last cursor", Code.ResourceExhausted));
    }
    close(WebSocketCloseCode.policyViolation, "too slow: the client stopped reading");
  }

  /** Aborts every call without `end` frames: the socket is gone or going. */
  function release(): void {
    for (const call of calls.values()) {
      call.ended = true;
      call.controller.abort(callEnded);
      if (call.method.kind === "server_streaming") metrics.streams.dec({ transport });
    }
    calls.clear();
  }

  socket.on("message", (data: Buffer, isBinary: boolean) => {
    heard();
    if (closing) return;
    // RFC 6455 §7.4.1: 1003 for a data type the endpoint cannot accept.
    if (!isBinary) return close(WebSocketCloseCode.unsupportedData, "text frames are not supported: send binary rivulet.bridge.v1.ClientFrame");
    try {
      onFrame(data);
    } catch (error) {
      if (error instanceof WebSocketFrameError) return close(error.closeCode, error.message);
      logger.error({ err: error }, "websocket frame handling failed");
      return close(WebSocketCloseCode.internalError, "internal error");
    }
    // A client that sends (pings, unary calls) but does not read would grow the
    // outgoing buffer without bound: stop reading its frames until it drains.
    if (congested() && !socket.isPaused) {
      socket.pause();
      void waitForDrain().then(() => socket.resume());
    }
  });
  // Only the peer's pongs count as an answer (its frames only show it is there). A 'drain' means the kernel
  // took the bytes, not that the peer read them: loopback buffers grow to
  // megabytes, so a paused reader's backlog drains, and counting that as an
  // answer had it cut (1006) with its end frames still unread.
  socket.on("pong", answered);
  // ws emits errors (oversized frames: 1009, bad framing: 1002) and then closes the socket itself.
  socket.on("error", (error) => logger.debug({ err: error }, "websocket error"));
  // The outbox discards what is queued itself: it listens to 'close' too, and first.
  socket.on("close", () => {
    closing = true;
    release();
    options.onClosed();
  });

  return {
    get openCalls() {
      return calls.size;
    },
    get idleSince() {
      return idleSince;
    },
    heartbeat() {
      // Frames sent since the ping the peer last answered may stand between it and our ping
      // (ws's bufferedAmount: bytes the server still holds, the kernel's buffers being full).
      const receiving = outbox.writtenBytes !== writtenAtAnswer || socket.bufferedAmount > 0;
      switch (liveness.round(Date.now(), receiving)) {
        case "ping":
          if (socket.readyState !== socket.OPEN) return;
          writtenAtPing = outbox.writtenBytes;
          socket.ping();
          return;
        case "wait":
          return;
        case "terminate":
          logger.debug("websocket peer did not answer a ping: terminating");
          socket.terminate();
          return;
        case "too-slow":
          return closeTooSlow();
      }
    },
    close,
  };
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
