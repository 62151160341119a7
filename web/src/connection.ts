import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { Identity } from "./identity.js";
import type { LinkState } from "./link-state.js";
import {
  ChatService,
  createSseClient,
  createSseTransport,
  createWebSocketTransport,
  type SubscribeResponse,
  type WatchPresenceResponse,
  type WebSocketTransportState,
} from "./rivulet.js";

/** The transports the picker offers. HTTP/2 is Connect-Web too: browsers speak it only over TLS, so the page decides by its scheme. */
export type TransportKind = "websocket" | "sse" | "connect";

export const transportLabels: Readonly<Record<TransportKind, string>> = {
  websocket: "WebSocket",
  sse: "Server-Sent Events",
  connect: "Connect-Web (fetch)",
};

/** One transport the user picked: a connect-es Transport for every service, and the chat panel's two streams. */
export interface Connection {
  readonly kind: TransportKind;
  /**
   * Any of Rivulet's services over the picked transport: `createClient(NotificationService, connection.transport)`.
   * Unary calls go over the WebSocket, or Connect over fetch for SSE and Connect-Web; server streams over the WebSocket, SSE or fetch.
   */
  readonly transport: Transport;
  readonly chat: Client<typeof ChatService>;
  subscribe(request: { room: string; cursor: string; history: number; signals: boolean }, signal: AbortSignal): AsyncIterable<SubscribeResponse>;
  watchPresence(room: string, signal: AbortSignal): AsyncIterable<WatchPresenceResponse>;
  /** Ends the transport's streams and its socket, if any. */
  close(): void;
}

/**
 * Opens `kind` for `identity`. `onState` hears what the transport knows of
 * its own reconnects: the WebSocket's state (no delay: the client does not
 * expose its backoff) and the SSE client's reconnects with their delay.
 */
export function openConnection(kind: TransportKind, identity: Identity, onState: (state: LinkState) => void): Connection {
  const authorize: Interceptor = (next) => async (request) => {
    request.header.set("authorization", `Bearer ${await identity.token()}`);
    return next(request);
  };
  // Connect over fetch: HTTP/2 when the page came over https and the server offers it, else HTTP/1.1.
  const fetchTransport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [authorize] });

  if (kind === "websocket") {
    // "connecting" after the socket was once open is a reconnect.
    let wasOpen = false;
    const transport = createWebSocketTransport({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`,
      token: () => identity.token(),
      onStateChange: (state) => {
        onState(fromWebSocketState(state, wasOpen));
        wasOpen ||= state === "open";
      },
    });
    const chat = createClient(ChatService, transport);
    return {
      kind,
      transport,
      chat,
      subscribe: (request, signal) => chat.subscribe(request, { signal }),
      watchPresence: (room, signal) => chat.watchPresence({ room }, { signal }),
      close: () => transport.close(),
    };
  }

  const chat = createClient(ChatService, fetchTransport);
  if (kind === "sse") {
    const sse = createSseClient({ baseUrl: location.origin, token: () => identity.token() });
    const onReconnect = (reason: { rawMessage: string }, delayMs: number) =>
      onState({ kind: "reconnecting", at: Date.now() + delayMs, reason: reason.rawMessage });
    return {
      kind,
      transport: createSseTransport({ baseUrl: location.origin, token: () => identity.token(), unaryTransport: fetchTransport }),
      chat,
      subscribe: (request, signal) => sse.subscribe(ChatService.method.subscribe, request, { signal, onReconnect }),
      watchPresence: (room, signal) => sse.subscribe(ChatService.method.watchPresence, { room }, { signal, onReconnect }),
      close: () => undefined,
    };
  }
  return {
    kind,
    transport: fetchTransport,
    chat,
    subscribe: (request, signal) => chat.subscribe(request, { signal }),
    watchPresence: (room, signal) => chat.watchPresence({ room }, { signal }),
    close: () => undefined,
  };
}

function fromWebSocketState(state: WebSocketTransportState, wasOpen: boolean): LinkState {
  switch (state) {
    case "idle":
    case "connecting":
      return wasOpen ? { kind: "reconnecting" } : { kind: "connecting" };
    case "open":
      return { kind: "connected" };
    case "waiting":
      return { kind: "reconnecting" };
    case "closed":
      return { kind: "offline", reason: "the socket was closed" };
  }
}
