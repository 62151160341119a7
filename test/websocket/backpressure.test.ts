// Slow consumers on the WebSocket: a client that stops reading makes the
// socket's buffered bytes pass --ws-max-buffered; the stream then follows its
// method's policy. Lossless (chat): the call ends with resource_exhausted
// after every message it had sent, and resuming from the last cursor loses
// nothing. Conflate (progress): only the newest pending snapshot is kept, and
// the terminal one always arrives.
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { EchoRequestSchema, EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { JobState, ProgressService, WatchRequestSchema, WatchResponseSchema } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openRawSocket, openWatchedRawSocket } from "./raw-socket.js";

const textOf = (r: SubscribeResponse) => (r.event.case === "message" ? r.event.value.text : `<${r.event.case}>`);

describe("a WebSocket client that stops reading", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({
      extraServices: () => [counterService()],
      config: { wsMaxBufferedBytes: 64 * 1024, subscriberBuffer: 16, historyCount: 100_000 },
    });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  const openWatchedSocket = () => openWatchedRawSocket(server.url, token);

  async function droppedSlowConsumers(): Promise<number> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(/rivulet_slow_consumers_dropped_total\{transport="websocket"\} (\d+)/.exec(text)?.[1] ?? 0);
  }

  it("ends a lossless stream with resource_exhausted, then resumes from its cursor with nothing lost", async () => {
    const room = "slow-lossless";
    const { socket, serverSocket } = await openWatchedSocket();
    socket.call(1, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room });
    const publisher = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    await publisher.send({ room, text: "0" }, bearer(token));
    expect((await socket.until(1, SubscribeResponseSchema, 1)).messages.map(textOf)).toEqual(["0"]);
    // A bystander reading at full speed on another socket, same room.
    const bystander = await openRawSocket(server.url, { token });
    bystander.call(1, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room, history: 1 });
    expect((await bystander.until(1, SubscribeResponseSchema, 1)).messages.map(textOf)).toEqual(["0"]);
    // ws's pause(): the client stops reading from its TCP socket.
    socket.socket.pause();

    // Publish until the server's socket holds more than --ws-max-buffered (kernel
    // buffers take some megabytes first): the stream then stops being read, and
    // more messages than --subscriber-buffer overflow the subscription.
    const padding = "x".repeat(4000);
    let published = 1;
    const publish = async (count: number) => {
      const batch = Array.from({ length: count }, (_, i) => `${published + i} ${padding}`);
      published += count;
      await Promise.all(batch.map((text) => publisher.send({ room, text }, bearer(token))));
    };
    while (serverSocket.bufferedAmount <= 64 * 1024) {
      await publish(50);
      expect(published).toBeLessThan(20_000);
    }
    // More than --subscriber-buffer messages waiting: the stream is dropped at
    // once (its held messages freed), not when the client next reads.
    await publish(17);
    expect(await droppedSlowConsumers()).toBe(1);
    socket.socket.resume();

    const before = await socket.until(1, SubscribeResponseSchema);
    expect(before.error).toEqual({ code: "resource_exhausted", message: "subscriber too slow: buffer full; resume from the last cursor" });
    // Concurrent sends land in any order: compare with the room's own order.
    const order = (r: SubscribeResponse) => Number(textOf(r).split(" ")[0]);
    const delivered = before.messages.map(order);
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered.length).toBeLessThan(published - 1);
    expect(await droppedSlowConsumers()).toBe(1);

    socket.call(2, "rivulet.chat.v1.ChatService/Subscribe", SubscribeRequestSchema, { room, cursor: before.cursors.at(-1)! });
    const rest = await socket.until(2, SubscribeResponseSchema, published - 1 - delivered.length);
    const all = [0, ...delivered, ...rest.messages.map(order)];
    expect(new Set(all).size).toBe(published);
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: published }, (_, i) => i));
    socket.close();

    // The bystander was never slowed down or ended: it has every message, and its stream is still open.
    const seen = await bystander.until(1, SubscribeResponseSchema, published - 1);
    expect(seen.ended).toBe(false);
    expect([0, ...seen.messages.map(order)].sort((a, b) => a - b)).toEqual(Array.from({ length: published }, (_, i) => i));
    bystander.close();
  });

  it("conflates a job watch: newer snapshots replace pending ones, and the terminal one arrives", async () => {
    const progress = clientFor(ProgressService, transportFor(server.url, "connect", "2"));
    const { job } = await progress.start({ kind: "slow-watch" }, bearer(token));
    const { socket, serverSocket } = await openWatchedSocket();
    socket.call(1, "rivulet.progress.v1.ProgressService/Watch", WatchRequestSchema, { jobId: job!.id });
    expect((await socket.until(1, WatchResponseSchema, 1)).messages.map((m) => m.job?.state)).toEqual([JobState.PENDING]);
    socket.socket.pause();

    const message = "y".repeat(1000);
    let reports = 0;
    const report = async (count: number) => {
      const batch = Array.from({ length: count }, () => ++reports);
      for (const n of batch) await progress.report({ jobId: job!.id, fraction: n / 100_000, message }, bearer(token));
    };
    while (serverSocket.bufferedAmount <= 64 * 1024) {
      await report(50);
      expect(reports).toBeLessThan(50_000);
    }
    await report(100);
    await progress.report({ jobId: job!.id, state: JobState.SUCCEEDED, fraction: 1 }, bearer(token));
    socket.socket.resume();

    const watched = await socket.until(1, WatchResponseSchema);
    expect(watched.error).toBeUndefined();
    const sequences = watched.messages.map((m) => Number(m.job!.sequence));
    // Strictly increasing, with skips: the last 100 running snapshots collapsed while the socket was full.
    expect(sequences.every((n, i) => i === 0 || n > sequences[i - 1]!)).toBe(true);
    expect(sequences.length).toBeLessThan(reports + 1);
    expect(watched.messages.at(-1)!.job).toMatchObject({ state: JobState.SUCCEEDED, fraction: 1 });
    socket.close();
  });

  it("stops reading from a client that sends but does not read, and serves it again once it reads", async () => {
    const { socket, serverSocket, serverTransport } = await openWatchedSocket();
    socket.socket.pause();
    const paused = once(serverTransport, "pause");
    const text = "z".repeat(10_000);
    const calls = 3000; // 30 MB of answers: far more than the kernel's buffers and --ws-max-buffered
    for (let id = 1; id <= calls; id++) socket.call(id, "rivulet.testing.v1.CounterService/Echo", EchoRequestSchema, { text });
    await paused;
    // The server holds at most the bound plus the answers already in flight (one per open call).
    expect(serverSocket.bufferedAmount).toBeLessThan(64 * 1024 + 100 * 10_100);
    socket.socket.resume();
    // Every call is answered: echoed, or refused when more than --ws-max-calls were open at once.
    let echoed = 0;
    for (let id = 1; id <= calls; id++) {
      const result = await socket.until(id, EchoResponseSchema);
      if (result.error === undefined) {
        expect(result.messages[0]?.text.length).toBe(text.length);
        echoed++;
      } else {
        expect(result.error).toEqual({ code: "resource_exhausted", message: "more than 100 calls open on one socket" });
      }
    }
    expect(echoed).toBeGreaterThan(calls / 10);
    socket.close();
  });
});
