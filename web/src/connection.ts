import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Identity } from "./identity.js";
import type { LinkState } from "./link-state.js";
import {
  ChatService,
  createIndexedDbOutbox,
  createSseTransport,
  createWebSocketTransport,
  type WebSocketTransportState,
  type WebSocketTransportStateDetail,
} from "./rivulet.js";

/** The transports the picker offers. HTTP/2 is Connect-Web too: browsers speak it only over TLS, so the page decides by its scheme. */
export type TransportKind = "websocket" | "sse" | "connect";

export const transportLabels: Readonly<Record<TransportKind, string>> = {
  websocket: "WebSocket",
  sse: "Server-Sent Events",
  connect: "Connect-Web (fetch)",
};

/** One transport the user picked: a connect-es Transport for every service. */
export interface Connection {
  readonly kind: TransportKind;
  /**
   * Any of Rivulet's services over the picked transport: `createClient(NotificationService, connection.transport)`.
   * Unary calls go over the WebSocket, or Connect over fetch for SSE and Connect-Web; server streams over the WebSocket, SSE or fetch.
   */
  readonly transport: Transport;
  /** ChatService over `transport`. */
  readonly chat: Client<typeof ChatService>;
  /** Whether a call made now goes out now: false while the WebSocket is down (its calls then wait for it). The HTTP transports always try. */
  isOpen(): boolean;
  /** Ends the transport's streams and its socket, if any. */
  close(): void;
}

/** What a connection tells the page about itself. */
export interface ConnectionEvents {
  /** What the transport knows of its own reconnects: the WebSocket's state with its retry delay, the SSE client's reconnects with theirs. */
  onState(state: LinkState): void;
  /** How many writes wait to be sent (WebSocket only). */
  onQueue(queuedWrites: number): void;
}

export interface ConnectionOptions {
  /** The WebSocket's IndexedDB outbox, by name: writes made while the socket is down wait there, across reloads. None by default. */
  readonly outbox?: string;
}

/**
 * Opens `kind` for `identity`. On the WebSocket with `options.outbox`, chat
 * messages sent while the socket is down wait in an IndexedDB outbox and are
 * sent, in order, once it is back, even after a reload; SSE and Connect-Web
 * have no outbox, so a write while the server is away fails and says so.
 */
export function openConnection(kind: TransportKind, identity: Identity, events: ConnectionEvents, options: ConnectionOptions = {}): Connection {
  const connection = (transport: Transport, isOpen: () => boolean, close: () => void): Connection => ({
    kind,
    transport,
    chat: createClient(ChatService, transport),
    isOpen,
    close,
  });

  if (kind === "websocket") {
    // "connecting" after the socket was once open is a reconnect.
    let wasOpen = false;
    const transport = createWebSocketTransport({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
      token: (request) => identity.token(request),
      outbox: options.outbox === undefined ? undefined : createIndexedDbOutbox(options.outbox),
      onQueueChange: (count) => events.onQueue(count),
      onStateChange: (state, detail) => {
        events.onState(fromWebSocketState(state, detail, wasOpen));
        wasOpen ||= state === "open";
      },
    });
    events.onQueue(transport.queuedWrites);
    return connection(
      transport,
      () => transport.state === "open",
      () => transport.close(),
    );
  }

  // No outbox on the HTTP transports: nothing waits, and a call made now is tried now.
  events.onQueue(0);
  const authorize: Interceptor = (next) => async (request) => {
    request.header.set("authorization", `Bearer ${await identity.token()}`);
    return next(request);
  };
  // Connect over fetch: HTTP/2 when the page came over https and the server offers it, else HTTP/1.1.
  const fetchTransport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [authorize] });
  if (kind === "sse") {
    const transport = createSseTransport({
      baseUrl: location.origin,
      token: (request) => identity.token(request),
      unaryTransport: fetchTransport,
      onReconnect: (reason, delayMs) => events.onState({ kind: "reconnecting", at: Date.now() + delayMs, reason: reason.rawMessage }),
    });
    return connection(
      transport,
      () => true,
      () => undefined,
    );
  }
  return connection(
    fetchTransport,
    () => true,
    () => undefined,
  );
}

function fromWebSocketState(state: WebSocketTransportState, detail: WebSocketTransportStateDetail, wasOpen: boolean): LinkState {
  switch (state) {
    case "idle":
    case "connecting":
      return wasOpen ? { kind: "reconnecting", reason: detail.error?.rawMessage } : { kind: "connecting" };
    case "open":
      return { kind: "connected" };
    case "waiting":
      return { kind: "reconnecting", at: detail.retryAt, reason: detail.error?.rawMessage };
    case "closed":
      return { kind: "offline", reason: "the socket was closed" };
  }
}
