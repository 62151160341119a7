// Liveness on both ends and the socket's lifetime: the server's shared ping
// timer drops silent peers, idle sockets close, shutdown says 1012, and the
// typed transport notices a server that stops answering its pings.
import { subscribe as subscribeChannel, unsubscribe as unsubscribeChannel } from "node:diagnostics_channel";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createClient } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ChatService, SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { websocketOpenChannel } from "../../src/bridge/websocket/bridge.js";
import { createWebSocketTransport, type WebSocketTransportState } from "../../src/client/websocket-transport.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openRawSocket } from "./raw-socket.js";

const textOf = (r: SubscribeResponse | undefined) => (r?.event.case === "message" ? r.event.value.text : r?.event.case);

/** Completes a WebSocket handshake over a bare TCP socket, then reads nothing: a peer that never answers pings. */
async function openSilentPeer(server: TestServer): Promise<Socket> {
  const socket = connect(server.port, "127.0.0.1");
  socket.write(
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rivulet.v1\r\n\r\n",
  );
  const head = await new Promise<string>((resolve) => socket.once("data", (chunk: Buffer) => resolve(chunk.toString("latin1"))));
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  socket.pause();
  return socket;
}

describe("WebSocket liveness", () => {
  it("terminates a peer that does not answer protocol pings, and closes idle sockets with 1000", async () => {
    const server = await startTestServer({ config: { keepaliveMs: 100, idleTimeoutMs: 400 } });
    try {
      const token = await server.token("alice");
      const silent = await openSilentPeer(server);
      const busy = await openRawSocket(server.url, { token });
      await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).send({ room: "live-busy", text: "first" }, bearer(token));
      busy.call(1, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room: "live-busy", history: 1 });
      expect((await busy.until(1, SubscribeResponseSchema, 1)).messages.map(textOf)).toEqual(["first"]);
      const idle = await openRawSocket(server.url, { token });

      // The silent peer is cut without a close handshake: its TCP connection just ends.
      silent.resume();
      await new Promise<void>((resolve) => silent.once("close", () => resolve()));
      expect(await idle.closed).toEqual({ code: 1000, reason: "idle timeout" });

      // A socket with an open call answered every ping and is not idle: it still receives.
      await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).send({ room: "live-busy", text: "second" }, bearer(token));
      expect((await busy.until(1, SubscribeResponseSchema, 1)).messages.map(textOf)).toEqual(["second"]);
      busy.close();
      expect((await busy.closed).code).toBe(1005);
    } finally {
      await server.close();
    }
  });

  it("closes sockets with 1012 on shutdown, and refuses new handshakes with 503", async () => {
    const server = await startTestServer();
    const socket = await openRawSocket(server.url, { token: await server.token("alice") });
    socket.call(1, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room: "live-shutdown" });
    const closing = server.close();
    expect(await socket.closed).toEqual({ code: 1012, reason: "service restart: reconnect" });
    await closing;
  });

  it("lets the typed transport detect a server that stops answering pings, reconnect and resume", async () => {
    const server = await startTestServer();
    const opened: Duplex[] = [];
    const listener = (message: unknown) => opened.push((message as { transport: Duplex }).transport);
    subscribeChannel(websocketOpenChannel.name, listener);
    const token = await server.token("alice");
    let reconnecting: () => void = () => undefined;
    const waiting = new Promise<void>((resolve) => (reconnecting = resolve));
    const states: WebSocketTransportState[] = [];
    const transport = createWebSocketTransport({
      url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${token}`,
      pingIntervalMs: 100,
      backoffInitialMs: 10,
      onStateChange(state) {
        states.push(state);
        if (state === "waiting") reconnecting();
      },
    });
    try {
      const room = "live-pong";
      const publisher = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
      await publisher.send({ room, text: "one" }, bearer(token));
      const stream = createClient(ChatService, transport).subscribe({ room, history: 1 })[Symbol.asyncIterator]();
      expect(textOf((await stream.next()).value)).toBe("one");
      // The server stops reading: pings go unanswered, as with a hung process or a dead path.
      opened[0]!.pause();
      await waiting;
      await publisher.send({ room, text: "two" }, bearer(token));
      expect(textOf((await stream.next()).value)).toBe("two");
      expect(opened).toHaveLength(2);
      expect(states.slice(0, 4)).toEqual(["connecting", "open", "waiting", "connecting"]);
      await stream.return?.();
    } finally {
      transport.close();
      unsubscribeChannel(websocketOpenChannel.name, listener);
      await server.close();
    }
  });
});
