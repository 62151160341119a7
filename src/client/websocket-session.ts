import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ClientFrameSchema, ServerFrameSchema, type Error as WireError } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { shouldReconnect, WebSocketCloseCode, websocketSubprotocol } from "../wire/websocket-close-codes.js";
import { backoffDelay, type BackoffOptions } from "../wire/backoff.js";
import { errorFromWire } from "../wire/error-json.js";

/** The part of the WHATWG WebSocket API the session uses: browsers' own WebSocket and the `ws` package both provide it. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error" | "message", listener: (event: WebSocketEventLike) => void): void;
}

/** What the session reads from WebSocket events. */
export interface WebSocketEventLike {
  readonly type?: string;
  readonly data?: unknown;
  readonly code?: number;
  readonly reason?: string;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers and Node, or another runtime's (`ws`'s default export fits). */
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

/**
 * The connection's state, for UIs and tests: `idle` (no socket, no call
 * needs one), `connecting`, `open`, `waiting` (the socket dropped or could
 * not open; the next attempt is scheduled, see `SessionStateDetail`), and
 * `closed` (by `close()`, for good).
 */
export type SessionState = "idle" | "connecting" | "open" | "waiting" | "closed";

/** What goes with a state: when the next attempt is, and why the last one ended. */
export interface SessionStateDetail {
  /** `waiting`: when the next connection attempt starts, in ms since the epoch (compare with `Date.now()`). */
  readonly retryAt?: number;
  /** `waiting`: the delay chosen before the next attempt, in ms (backoff with full jitter), as of the change. */
  readonly retryInMs?: number;
  /** `waiting`, or `idle` after a drop: why the socket closed or could not open (`unavailable` for network failures). */
  readonly error?: ConnectError;
}

/** One call as the session sees it: it (re)sends the call frame and routes frames back. */
export interface SessionCall {
  /** The `call` frame's method and encoded request (asked again at every (re)send, so a resumed stream can move its cursor). */
  request(): { readonly method: string; readonly request: Uint8Array; readonly headers: Record<string, string> };
  message(payload: Uint8Array, cursor: string): void;
  /** The call ended; `error` when it failed. The call is already forgotten by the session. */
  end(error: ConnectError | undefined): void;
  /**
   * The socket went away before the call's `end`. `sent` says whether its
   * call frame had been written to that socket. Return true to send the call
   * again after reconnecting, false to end it with `reason`. Not asked when
   * the close code says the client is at fault: every call then ends.
   */
  interrupted(sent: boolean, reason: ConnectError): boolean;
}

/** How a session connects, reconnects and pings. */
export interface SessionOptions {
  /** The `ws://…/ws` URL, or a function that returns it (for example with a fresh `access_token`) at each connect. */
  readonly url: string | (() => string | Promise<string>);
  readonly WebSocket: WebSocketConstructor;
  /** Reconnect delays: the bound doubles per failed attempt (full jitter: a random delay up to the bound). */
  readonly backoff: BackoffOptions;
  /** How often to send `ping` while calls are open; a socket that stays silent for a whole interval after a ping is dead. */
  readonly pingIntervalMs: number;
  readonly onStateChange?: (state: SessionState, detail: SessionStateDetail) => void;
}

/** A reconnecting, multiplexed rivulet.v1 socket. */
export interface Session {
  readonly state: SessionState;
  readonly detail: SessionStateDetail;
  /** Sends the call now, or when the socket (re)opens. */
  start(call: SessionCall): void;
  /**
   * Sends the call again on a new socket, whose handshake asks `url` anew:
   * for a call the server refused because the handshake's credentials
   * expired. Call it from the call's `end`, so the socket closed is the one
   * that refused it; its other calls are asked `interrupted`, as after a drop.
   */
  restartOnNewSocket(call: SessionCall): void;
  /** Forgets the call; sends `cancel` when it is open on the socket. */
  cancel(call: SessionCall): void;
  /** Closes the socket and fails every open call with `canceled`; the session stays closed. */
  close(): void;
}

// WebSocket.CONNECTING and WebSocket.OPEN in the WHATWG API and in `ws`.
const connectingState = 0;
const open = 1;

/**
 * The client side of GET /ws (docs/protocol.md, "WebSocket"). Written by hand
 * because no library multiplexes connect-es calls over one socket: it keeps
 * the open calls, connects lazily when one starts, reconnects with
 * exponential backoff and full jitter while calls remain, and asks each
 * interrupted call whether to send it again (resumable streams and
 * idempotent writes say yes). Pings detect a dead server, which browsers
 * cannot see through protocol-level pings.
 */
export function createWebSocketSession(options: SessionOptions): Session {
  /** Calls to send, or sent on the current socket (with their id there). */
  const calls = new Map<SessionCall, number | undefined>();
  const byId = new Map<number, SessionCall>();
  let socket: WebSocketLike | undefined;
  let state: SessionState = "idle";
  let detail: SessionStateDetail = {};
  let attempt = 0;
  let nextId = 1;
  let nonce = 0n;
  let heardSincePing = true;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let pingTimer: ReturnType<typeof setInterval> | undefined;

  /** Changes the state; `waiting` is told each time (a new delay), the others only when they change. */
  function setState(next: SessionState, nextDetail: SessionStateDetail = {}): void {
    if (state === next && next !== "waiting") return;
    state = next;
    detail = nextDetail;
    options.onStateChange?.(next, nextDetail);
  }

  function allocateId(): number {
    for (;;) {
      const id = nextId;
      nextId = nextId >= 0xffffffff ? 1 : nextId + 1;
      if (!byId.has(id)) return id;
    }
  }

  function send(frame: Parameters<typeof create<typeof ClientFrameSchema>>[1]): void {
    socket?.send(toBinary(ClientFrameSchema, create(ClientFrameSchema, frame)));
  }

  function sendCall(call: SessionCall): void {
    const id = allocateId();
    calls.set(call, id);
    byId.set(id, call);
    send({ kind: { case: "call", value: { id, ...call.request() } } });
  }

  async function connect(): Promise<void> {
    setState("connecting");
    let url: string;
    try {
      url = typeof options.url === "string" ? options.url : await options.url();
    } catch {
      return dropped(new ConnectError("could not build the WebSocket URL", Code.Unavailable), true);
    }
    if (state !== "connecting") return; // closed meanwhile
    let ws: WebSocketLike;
    try {
      ws = new options.WebSocket(url, [websocketSubprotocol]);
    } catch (error) {
      // Browsers throw SyntaxError for a malformed URL: a drop like any other, retried with backoff.
      return dropped(new ConnectError(`could not open the WebSocket: ${error instanceof Error ? error.message : String(error)}`, Code.Unavailable), true);
    }
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.addEventListener("open", () => {
      if (socket !== ws) return;
      attempt = 0;
      setState("open");
      heardSincePing = true;
      pingTimer = setInterval(pingRound, options.pingIntervalMs);
      for (const call of calls.keys()) sendCall(call);
    });
    ws.addEventListener("message", (event) => {
      if (socket !== ws) return;
      heardSincePing = true;
      if (!(event.data instanceof ArrayBuffer)) return; // the protocol is binary only
      onFrame(new Uint8Array(event.data));
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      const code = event.code ?? 1006;
      const reconnect = shouldReconnect(code);
      const message = `WebSocket closed (${code}${event.reason ? `: ${event.reason}` : ""})`;
      dropped(
        new ConnectError(message, reconnect ? Code.Unavailable : code === WebSocketCloseCode.messageTooBig ? Code.ResourceExhausted : Code.Internal),
        reconnect,
      );
    });
    // Browsers follow an `error` with `close`. Node 22's WebSocket (undici) does not when the connection
    // itself failed (refused, unreachable): it stays CONNECTING forever, so a failure before `open` is the drop.
    ws.addEventListener("error", () => {
      if (socket !== ws || ws.readyState !== connectingState) return;
      dropped(new ConnectError("WebSocket closed (1006)", Code.Unavailable), true);
    });
  }

  function onFrame(bytes: Uint8Array): void {
    let frame;
    try {
      frame = fromBinary(ServerFrameSchema, bytes);
    } catch {
      return; // a frame this client cannot read: the calls it belonged to are failed by their own deadlines or the socket's end
    }
    switch (frame.kind.case) {
      case "message": {
        const call = byId.get(frame.kind.value.id);
        call?.message(frame.kind.value.payload, frame.kind.value.cursor);
        return;
      }
      case "end": {
        const call = byId.get(frame.kind.value.id);
        if (!call) return;
        byId.delete(frame.kind.value.id);
        calls.delete(call);
        call.end(errorOf(frame.kind.value.error));
        return;
      }
      default:
        return; // pong (already counted as a sign of life) or a kind added later
    }
  }

  function pingRound(): void {
    if (!heardSincePing) {
      // Silent for a whole interval after a ping: the server or the path to it is gone.
      const ws = socket;
      dropped(new ConnectError("WebSocket server stopped answering pings", Code.Unavailable), true);
      ws?.close(WebSocketCloseCode.pongTimeout, "pong timeout");
      return;
    }
    if (calls.size === 0) return;
    heardSincePing = false;
    send({ kind: { case: "ping", value: { nonce: ++nonce } } });
  }

  /** The socket is gone: ask each call whether to send it again, then reconnect while any remain. */
  function dropped(reason: ConnectError, reconnect: boolean): void {
    socket = undefined;
    clearInterval(pingTimer);
    pingTimer = undefined;
    byId.clear();
    for (const [call, id] of [...calls]) {
      calls.set(call, undefined);
      if (reconnect && call.interrupted(id !== undefined, reason)) continue;
      calls.delete(call);
      call.end(reason);
    }
    if (state === "closed") return;
    if (calls.size === 0) return setState("idle", { error: reason });
    scheduleReconnect(reason);
  }

  function scheduleReconnect(reason: ConnectError): void {
    const delay = backoffDelay(attempt++, options.backoff);
    setState("waiting", { retryAt: Date.now() + delay, retryInMs: delay, error: reason });
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (state === "waiting") void connect();
    }, delay);
  }

  return {
    get state() {
      return state;
    },
    get detail() {
      return detail;
    },
    start(call) {
      if (state === "closed") {
        call.end(new ConnectError("the WebSocket transport is closed", Code.Canceled));
        return;
      }
      calls.set(call, undefined);
      if (state === "open" && socket?.readyState === open) sendCall(call);
      else if (state === "idle") void connect();
    },
    restartOnNewSocket(call) {
      if (state === "closed") return call.end(new ConnectError("the WebSocket transport is closed", Code.Canceled));
      calls.set(call, undefined);
      if (state === "idle") return void connect();
      // Connecting or waiting: the next handshake asks for the URL anyway.
      if (state !== "open") return;
      const ws = socket;
      // Every call on this socket shares its expired credentials: resumable ones go along to the new socket.
      dropped(new ConnectError("reconnecting with fresh credentials", Code.Unavailable), true);
      ws?.close(WebSocketCloseCode.normal, "credentials expired");
    },
    cancel(call) {
      const id = calls.get(call);
      if (!calls.delete(call)) return;
      if (id === undefined) return;
      byId.delete(id);
      if (socket?.readyState === open) send({ kind: { case: "cancel", value: { id } } });
    },
    close() {
      if (state === "closed") return;
      setState("closed");
      clearTimeout(retryTimer);
      clearInterval(pingTimer);
      const ws = socket;
      socket = undefined;
      ws?.close(WebSocketCloseCode.normal, "client closed");
      const open = [...calls.keys()];
      calls.clear();
      byId.clear();
      for (const call of open) call.end(new ConnectError("the WebSocket transport is closed", Code.Canceled));
    },
  };
}

/** An `end`'s error: the fields of the Connect error JSON, so read as one (an unknown code is `unknown`). */
function errorOf(error: WireError | undefined): ConnectError | undefined {
  if (error === undefined) return undefined;
  return errorFromWire({ code: error.code, message: error.message }, new ConnectError(error.message, Code.Unknown));
}
