// A WebSocket client that stops reading for longer than the liveness check's
// two ping rounds, under ~1 KiB messages. Its pings are stuck behind what it
// has not read, so it is not dead: when it reads again it must find why its
// calls ended (end{resource_exhausted}), as on every other transport, not an
// abnormal closure (1006) with the reason lost. One that never reads again is
// closed after --idle-timeout with 1008, its calls' end frames first.
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import type { WebSocket } from "ws";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ChatMessageSchema, SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { Broker } from "../../src/broker/broker.js";
import { createMemoryBroker } from "../../src/broker/memory.js";
import { roomTopic } from "../../src/services/chat.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openWatchedRawSocket, type RawSocket } from "./raw-socket.js";

const keepaliveMs = 100;
const maxBuffered = 64 * 1024;
const textOf = (r: SubscribeResponse) => (r.event.case === "message" ? r.event.value.text : `<${r.event.case}>`);

/**
 * Publishes ~1 KiB chat messages straight into the server's broker (the
 * same bytes ChatService.Send stores; its RPC path is not what is tested, and
 * filling the kernel's socket buffers through it is slow) until the server
 * holds more than --ws-max-buffered for `serverSocket`, then `extra` more.
 * Returns how many it published; message `n` has text `"<n> xxx…"`, from 1.
 */
async function publishUntilBacklogged(broker: Broker, room: string, serverSocket: WebSocket, extra: number): Promise<number> {
  let published = 0;
  const publish = (count: number) =>
    Promise.all(
      Array.from({ length: count }, () => {
        const text = `${++published} ${"x".repeat(1000)}`;
        return broker.publish(roomTopic(room), toBinary(ChatMessageSchema, create(ChatMessageSchema, { id: `m${published}`, room, author: "alice", text })), {
          retention: { maxCount: 1_000_000, maxAgeMs: 3_600_000 },
        });
      }),
    );
  while (serverSocket.bufferedAmount <= maxBuffered) {
    await publish(100);
    expect(published).toBeLessThan(200_000);
  }
  await publish(extra);
  return published;
}

/** Rejects when the socket closes first: a call that can no longer end must fail the test, not hang it. */
function beforeClose<T>(socket: RawSocket, result: Promise<T>): Promise<T> {
  return Promise.race([result, socket.closed.then(({ code, reason }) => Promise.reject(new Error(`socket closed first: ${code} ${reason}`)))]);
}

/** One message `"0"` in the room, then a raw socket subscribed to it (with that message read: the stream is joined), which then stops reading. */
async function stalledSubscriber(server: TestServer, broker: Broker, room: string): Promise<{ socket: RawSocket; serverSocket: WebSocket }> {
  await broker.publish(roomTopic(room), toBinary(ChatMessageSchema, create(ChatMessageSchema, { id: "m0", room, author: "alice", text: "0" })));
  const { socket, serverSocket } = await openWatchedRawSocket(server.url, await server.token("alice"));
  socket.call(1, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room, history: 1 });
  expect((await socket.until(1, SubscribeResponseSchema, 1)).messages.map(textOf)).toEqual(["0"]);
  // ws's pause(): the client stops reading from its TCP socket.
  socket.socket.pause();
  return { socket, serverSocket };
}

describe("a WebSocket client that stops reading for many ping intervals", () => {
  const broker = createMemoryBroker();
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ broker, config: { keepaliveMs, wsMaxBufferedBytes: maxBuffered, subscriberBuffer: 16 } });
  });
  afterAll(() => server.close());

  it("finds end{resource_exhausted} after the messages it missed when it reads again, and resumes from its cursor", async () => {
    const room = "stalled-lossless";
    const { socket, serverSocket } = await stalledSubscriber(server, broker, room);
    // More than --subscriber-buffer messages once the socket is backlogged: the lossless stream overflows.
    const published = await publishUntilBacklogged(broker, room, serverSocket, 17);
    // The scenario itself: the client keeps not reading for ten ping intervals
    // (the liveness check used to cut it at the second), then reads again.
    await delay(10 * keepaliveMs);
    socket.socket.resume();

    const before = await beforeClose(socket, socket.until(1, SubscribeResponseSchema));
    expect(before.error).toEqual({ code: "resource_exhausted", message: "subscriber too slow: buffer full; resume from the last cursor" });
    const order = (r: SubscribeResponse) => Number(textOf(r).split(" ")[0]);
    const delivered = before.messages.map(order);
    expect(delivered.length).toBeGreaterThan(0);
    socket.call(2, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room, cursor: before.cursors.at(-1)! });
    const rest = await beforeClose(socket, socket.until(2, SubscribeResponseSchema, published - delivered.length));
    expect([...delivered, ...rest.messages.map(order)]).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    socket.close();
    expect((await socket.closed).code).toBe(1005);
  });
});

describe("a WebSocket client that never reads again", () => {
  const broker = createMemoryBroker();
  let server: TestServer;
  beforeAll(async () => {
    // A subscriber buffer too large to overflow here: only the liveness check can end the stream.
    server = await startTestServer({ broker, config: { keepaliveMs, idleTimeoutMs: 1000, wsMaxBufferedBytes: maxBuffered, subscriberBuffer: 1_000_000 } });
  });
  afterAll(() => server.close());

  it("is closed with 1008 after --idle-timeout, each open call's end{resource_exhausted} first", async () => {
    const { socket, serverSocket } = await stalledSubscriber(server, broker, "stalled-forever");
    await publishUntilBacklogged(broker, "stalled-forever", serverSocket, 0);
    // The server gives up on it (its side starts the close handshake) while it still reads nothing.
    await vi.waitFor(() => expect(serverSocket.readyState).toBe(serverSocket.CLOSING), { timeout: 20_000, interval: keepaliveMs });
    socket.socket.resume();

    const result = await socket.until(1, SubscribeResponseSchema);
    expect(result.error).toEqual({ code: "resource_exhausted", message: "subscriber too slow: the connection stopped draining; resume from the last cursor" });
    expect(await socket.closed).toEqual({ code: 1008, reason: "too slow: the client stopped reading" });
  });
});
