import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { createWebSocketTransport } from "../../src/client/websocket-transport.js";
import { transportFor } from "./clients.js";

/** The five ways a client reaches Rivulet, named as the access and authorization suites report them. */
export const fiveTransportNames = ["Connect", "gRPC", "gRPC-Web", "SSE", "WebSocket"] as const;
export type FiveTransportName = (typeof fiveTransportNames)[number];

/** One transport of each kind to a server, with the token in each call's headers; `close()` closes the WebSocket. */
export interface FiveTransports {
  get(name: FiveTransportName): Transport;
  close(): void;
}

/**
 * Connect and gRPC over h2c, gRPC-Web over HTTP/1.1, and Rivulet's own SSE
 * (streams; its unary calls go over Connect, as a browser's would) and
 * WebSocket transports. The SSE and WebSocket transports retry transient codes
 * (`unavailable` among them) on streams instead of reporting them: a suite
 * expecting `unavailable` from a stream uses the first three.
 */
export function fiveTransports(baseUrl: string): FiveTransports {
  const connect = transportFor(baseUrl, "connect", "1.1");
  const webSocket = createWebSocketTransport({ url: `${baseUrl.replace(/^http/, "ws")}/ws`, backoffInitialMs: 10, backoffMaxMs: 50 });
  const transports: Record<FiveTransportName, Transport> = {
    Connect: transportFor(baseUrl, "connect", "2"),
    gRPC: transportFor(baseUrl, "grpc", "2"),
    "gRPC-Web": transportFor(baseUrl, "grpc-web", "1.1"),
    SSE: createSseTransport({ baseUrl, unaryTransport: connect, backoff: { initialMs: 10, maxMs: 50 } }),
    WebSocket: webSocket,
  };
  return { get: (name) => transports[name], close: () => webSocket.close() };
}

/** How a call ended: "ok", or the Connect code's name and the message as the server wrote it (`PermissionDenied: not allowed …`). */
export async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "ok";
  } catch (error) {
    const failure = ConnectError.from(error);
    return `${Code[failure.code]}: ${failure.rawMessage}`;
  }
}
