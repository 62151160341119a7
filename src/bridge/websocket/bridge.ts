import { channel } from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { findBearerToken } from "../../auth/credentials.js";
import { refuseSocket } from "../../http/refuse-socket.js";
import { requestHeaders } from "../../http/request-headers.js";
import { redactUrl } from "../../log.js";
import type { Mount, MountContext } from "../../http/mount.js";
import { WebSocketCloseCode, websocketSubprotocol } from "../../wire/websocket-close-codes.js";
import { createWebSocketConnection, RivuletWebSocket, type WebSocketConnection, type WebSocketConnectionShared } from "./connection.js";
import { negotiatedDeflate, perMessageDeflateOptions } from "./deflate.js";

/**
 * Published with `{ socket, transport }` (the server side `ws` WebSocket and its TCP or TLS socket) whenever a
 * socket opens. Nothing subscribes in production (publishing then costs a
 * check); tests subscribe to reach the server side of a connection, for
 * example to terminate it mid-stream.
 */
export const websocketOpenChannel = channel("rivulet:websocket:open");

/**
 * `GET /ws`: the multiplexed binary WebSocket (docs/protocol.md, "WebSocket").
 * Checks the handshake (path, Origin, subprotocol), upgrades with `ws` in
 * noServer mode, and hands each socket to a connection handler. One shared
 * timer pings every socket, terminates silent ones and closes idle ones.
 */
export function createWebSocketBridge(context: MountContext): Mount {
  const { config, logger, metrics } = context;
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: config.wsMaxPayloadBytes,
    // Off by default for fan-out: compression costs CPU per message and saves little on loopback and LANs.
    perMessageDeflate: config.wsCompression ? perMessageDeflateOptions(config.wsCompressionThresholdBytes) : false,
    clientTracking: false,
    // Sockets with a slot for their connection: their listeners are shared functions (connection.ts).
    WebSocket: RivuletWebSocket,
    // RFC 6455 §4.2.2: the server selects one of the offered subprotocols; others never reach this point.
    handleProtocols: (offered) => (offered.has(websocketSubprotocol) ? websocketSubprotocol : false),
  });
  // The extension parameters ws accepted, read from its handshake answer (ws keeps them private).
  const deflateAnswers = new WeakMap<IncomingMessage, string>();
  server.on("headers", (headers: string[], req: IncomingMessage) => {
    const answer = headers.find((line) => line.toLowerCase().startsWith("sec-websocket-extensions:"));
    if (answer !== undefined) deflateAnswers.set(req, answer.slice(answer.indexOf(":") + 1));
  });
  const connections = new Set<WebSocketConnection>();
  let timer: NodeJS.Timeout | undefined;
  let shuttingDown = false;
  let allClosed: (() => void) | undefined;

  function heartbeatRound(): void {
    const now = Date.now();
    for (const connection of connections) {
      if (connection.idleSince !== undefined && now - connection.idleSince >= config.idleTimeoutMs) {
        connection.close(WebSocketCloseCode.normal, "idle timeout");
        continue;
      }
      connection.heartbeat();
    }
  }

  function closeAll(): void {
    shuttingDown = true;
    for (const connection of connections) connection.close(WebSocketCloseCode.serviceRestart, "service restart: reconnect");
  }
  context.shutdownSignal.addEventListener("abort", closeAll, { once: true });

  const shared: WebSocketConnectionShared = {
    methods: context.methods,
    logger,
    metrics,
    limits: {
      maxCalls: config.wsMaxCalls,
      maxMessageBytes: config.maxMessageBytes,
      maxBufferedBytes: config.wsMaxBufferedBytes,
      maxStallMs: config.idleTimeoutMs,
    },
    onClosed(connection) {
      connections.delete(connection);
      metrics.connections.dec({ transport: "websocket" });
      if (connections.size === 0) {
        clearInterval(timer);
        timer = undefined;
        allClosed?.();
      }
    },
  };

  function open(socket: RivuletWebSocket, transport: Duplex, req: IncomingMessage, url: URL): void {
    const connection = createWebSocketConnection(shared, {
      socket,
      transport,
      deflate: negotiatedDeflate(deflateAnswers.get(req), config.wsCompressionThresholdBytes, metrics.websocketDeflated),
      handshakeToken: findBearerToken(requestHeaders(req), url.searchParams),
      url: redactUrl(url.pathname + url.search),
    });
    connections.add(connection);
    metrics.connections.inc({ transport: "websocket" });
    timer ??= setInterval(heartbeatRound, config.keepaliveMs).unref();
    if (shuttingDown) connection.close(WebSocketCloseCode.serviceRestart, "service restart: reconnect");
    if (websocketOpenChannel.hasSubscribers) websocketOpenChannel.publish({ socket, transport });
  }

  /** Why a handshake is refused (status and plain-text reason), or undefined to upgrade it. */
  function handshakeRefusal(req: IncomingMessage): { status: number; reason: string } | undefined {
    if (shuttingDown) return { status: 503, reason: "the server is shutting down; reconnect elsewhere" };
    if (!originAllowed(req, config.allowedOrigins)) {
      logger.info({ origin: req.headers.origin, url: redactUrl(req.url ?? "") }, "websocket handshake from a foreign origin refused");
      return { status: 403, reason: "origin not allowed" };
    }
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
    if (!offered.includes(websocketSubprotocol)) return { status: 400, reason: `offer the WebSocket subprotocol ${websocketSubprotocol}` };
    return undefined;
  }

  return {
    upgrade(req, socket, head, url) {
      if (url.pathname !== "/ws") return false;
      const refusal = handshakeRefusal(req);
      if (refusal !== undefined) {
        refuseSocket(socket, refusal.status, refusal.reason);
        return true;
      }
      server.handleUpgrade(req, socket, head, (ws) => open(ws as RivuletWebSocket, socket, req, url));
      return true;
    },
    shutdown() {
      closeAll();
      if (connections.size === 0) return Promise.resolve();
      // Clients answer the close frame; one that does not is destroyed with the server's other connections after the grace period.
      return new Promise<void>((resolve) => {
        allClosed = resolve;
        setTimeout(resolve, config.shutdownGraceMs).unref();
      });
    },
  };
}

/**
 * Cross-site WebSocket hijacking defence: browsers send `Origin` on every
 * handshake (RFC 6455 §4.1, §10.2), and pages of other sites must not ride on
 * the user's cookies. Same-origin pages and listed origins pass; clients that
 * are not browsers send no Origin and pass too.
 */
export function originAllowed(req: IncomingMessage, allowedOrigins: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowedOrigins.includes(origin)) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false; // "null" and other opaque origins
  }
}
