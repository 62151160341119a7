// What a UI shows about its connection (docs/client.md): the WebSocket
// transport's state with the retry delay and its reason, the writes it holds
// (in memory, or in an outbox store, including entries an earlier transport
// left), createSseTransport's onReconnect and onGap, and the retryable codes.
// Real server, real clients, a TCP proxy cut and restored; nothing waits on
// a clock. The IndexedDB count in Chromium is test/websocket/queued-writes-browser.test.ts.
import { EventEmitter, once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import type { DescMethodStreaming } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { createMemoryOutbox } from "../../src/client/outbox.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { createWebSocketTransport, type WebSocketTransport, type WebSocketTransportStateDetail } from "../../src/client/websocket-transport.js";
import { isRetryable, retryableCodes } from "../../src/wire/transient-codes.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/** Values a callback reported, and a way to wait for the n-th. */
function recorder<T>() {
  const values: T[] = [];
  const events = new EventEmitter();
  return {
    values,
    push(value: T) {
      values.push(value);
      events.emit("value");
    },
    async until(count: number) {
      while (values.length < count) await once(events, "value");
    },
    /** Resolves once the last value reported is `value`. */
    async untilLast(value: T) {
      while (values.at(-1) !== value) await once(events, "value");
    },
  };
}

describe("what a client tells its UI", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let token: string;
  const transports: WebSocketTransport[] = [];

  beforeAll(async () => {
    // Rooms keep three messages: a resume further back gets a gap first.
    server = await startTestServer({ config: { historyCount: 3 } });
    token = await server.token("alice");
  });
  afterEach(async () => {
    for (const t of transports.splice(0)) t.close();
    await proxy?.close();
  });
  afterAll(() => server.close());

  const textOf = (r: SubscribeResponse) => (r.event.case === "message" ? r.event.value.text : `<${r.event.case}>`);

  async function history(room: string) {
    const { messages } = await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).history({ room }, bearer(token));
    return messages.map((m) => m.text);
  }

  /** A WebSocket transport through a fresh proxy, with its state changes and queue counts recorded. */
  async function proxiedTransport(options: { outbox?: ReturnType<typeof createMemoryOutbox> } = {}) {
    proxy = await startTcpProxy(server.port);
    const states = recorder<{ state: string; detail: WebSocketTransportStateDetail; at: number }>();
    const queue = recorder<number>();
    const transport = createWebSocketTransport({
      url: `${proxy.url.replace(/^http/, "ws")}/ws?access_token=${token}`,
      backoffInitialMs: 40,
      backoffMaxMs: 200,
      outbox: options.outbox,
      onStateChange: (state, detail) => states.push({ state, detail, at: Date.now() }),
      onQueueChange: (count) => queue.push(count),
    });
    transports.push(transport);
    return { transport, states, queue, proxy };
  }

  it("WebSocket transport: `waiting` says when the next attempt is and why the socket went down", async () => {
    const { transport, states, proxy: cut } = await proxiedTransport();
    const chat = createClient(ChatService, transport);
    const room = "state-waiting";
    // With history, so a resumed stream replays what it missed: nothing here races the subscription.
    const stream = chat.subscribe({ room, history: 10 })[Symbol.asyncIterator]();
    await chat.send({ room, text: "before" });
    expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("before");
    expect(states.values.map((s) => [s.state, s.detail])).toEqual([
      ["connecting", {}],
      ["open", {}],
    ]);
    expect(transport.stateDetail).toEqual({});

    // Cut, and held: the reconnect attempt waits in the proxy until released.
    cut.drop({ hold: true });
    await states.until(4);
    const waiting = states.values[2]!;
    expect(waiting.state).toBe("waiting");
    expect(waiting.detail.error).toBeInstanceOf(ConnectError);
    expect([waiting.detail.error?.code, waiting.detail.error?.rawMessage]).toEqual([Code.Unavailable, "WebSocket closed (1006)"]);
    // The first delay after an open socket: full jitter up to backoffInitialMs.
    const retryInMs = waiting.detail.retryInMs!;
    expect(retryInMs).toBeGreaterThanOrEqual(0);
    expect(retryInMs).toBeLessThanOrEqual(40);
    // retryAt is the moment of the change plus that delay, on the Date.now() clock.
    expect(waiting.detail.retryAt! - retryInMs).toBeLessThanOrEqual(waiting.at);
    expect(waiting.detail.retryAt! - retryInMs).toBeGreaterThanOrEqual(waiting.at - 1000);
    expect(states.values[3]!.state).toBe("connecting");
    expect(transport.stateDetail).toEqual({});

    cut.release();
    await states.until(5);
    expect(states.values.map((s) => s.state)).toEqual(["connecting", "open", "waiting", "connecting", "open"]);
    await chat.send({ room, text: "after" });
    expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("after");
    await stream.return?.();
  });

  it("WebSocket transport: a refused connection is `waiting` too (Node's WebSocket reports it with `error` and no `close`)", async () => {
    // A loopback port where nothing listens: opened, then closed.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    let attempts = 0;
    const states = recorder<[string, WebSocketTransportStateDetail]>();
    const transport = createWebSocketTransport({
      url: () => `ws://127.0.0.1:${++attempts === 1 ? deadPort : server.port}/ws?access_token=${token}`,
      backoffInitialMs: 20,
      onStateChange: (state, detail) => states.push([state, detail]),
    });
    transports.push(transport);
    const { message } = await createClient(ChatService, transport).send({ room: "state-refused", text: "through" });
    expect(message?.text).toBe("through");
    expect(states.values.map(([state]) => state)).toEqual(["connecting", "waiting", "connecting", "open"]);
    const error = states.values[1]![1].error;
    expect([error?.code, error?.rawMessage]).toEqual([Code.Unavailable, "WebSocket closed (1006)"]);
  });

  it("WebSocket transport without an outbox: queuedWrites counts the sends held until the socket opens", async () => {
    const { transport, queue, proxy: cut } = await proxiedTransport();
    const chat = createClient(ChatService, transport);
    const room = "queue-memory";
    cut.drop({ hold: true });
    expect(transport.queuedWrites).toBe(0);
    const sends = ["one", "two", "three"].map((text) => chat.send({ room, text }));
    await queue.until(3);
    expect(queue.values).toEqual([1, 2, 3]);
    expect(transport.queuedWrites).toBe(3);
    expect(transport.state).toBe("connecting");

    cut.release();
    expect((await Promise.all(sends)).map((r) => r.message?.text)).toEqual(["one", "two", "three"]);
    // Sent together when the socket opened.
    expect(queue.values).toEqual([1, 2, 3, 2, 1, 0]);
    expect(transport.queuedWrites).toBe(0);
  });

  it("WebSocket transport with an outbox: queuedWrites counts the store's entries, those an earlier transport left first", async () => {
    const store = createMemoryOutbox();
    const room = "queue-outbox";
    // An earlier "page": two sends stored while offline, then gone.
    const earlier = await proxiedTransport({ outbox: store });
    earlier.proxy.drop({ hold: true });
    const earlierChat = createClient(ChatService, earlier.transport);
    const abandoned = ["left 1", "left 2"].map((text) => earlierChat.send({ room, text }).catch((error: unknown) => ConnectError.from(error).code));
    // Counted as the store lists them: two puts in a row may be told as one change.
    await earlier.queue.untilLast(2);
    earlier.transport.close();
    expect(await Promise.all(abandoned)).toEqual([Code.Canceled, Code.Canceled]);
    await earlier.proxy.close();

    // The next one counts what it found, then its own write, then each answer.
    const { transport, queue, proxy: cut } = await proxiedTransport({ outbox: store });
    cut.drop({ hold: true });
    await queue.until(1);
    expect(queue.values).toEqual([2]);
    expect(transport.queuedWrites).toBe(2);
    const own = createClient(ChatService, transport).send({ room, text: "mine" });
    await queue.untilLast(3);
    expect(transport.queuedWrites).toBe(3);

    cut.release();
    expect((await own).message?.text).toBe("mine");
    await queue.untilLast(0);
    // One write at a time: each answer is a change of its own.
    expect(queue.values).toEqual([2, 3, 2, 1, 0]);
    expect(await history(room)).toEqual(["left 1", "left 2", "mine"]);
  });

  it("createSseTransport: onReconnect and onGap for every stream it opens, with the method", async () => {
    proxy = await startTcpProxy(server.port);
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const room = "sse-transport-callbacks";
    await chat.send({ room, text: "t1" }, bearer(token));
    const cursor = (await chat.send({ room, text: "t2" }, bearer(token))).message!.cursor;
    for (const text of ["t3", "t4", "t5", "t6"]) await chat.send({ room, text }, bearer(token));
    const reconnects = recorder<{ code: Code; delayMs: number; method: DescMethodStreaming }>();
    const gaps: [GapReason, DescMethodStreaming][] = [];
    const sse = createClient(
      ChatService,
      createSseTransport({
        baseUrl: proxy.url,
        token,
        backoff: { initialMs: 20, maxMs: 20 },
        onReconnect: (reason, delayMs, method) => reconnects.push({ code: reason.code, delayMs, method }),
        onGap: (gap, method) => gaps.push([gap.reason, method]),
      }),
    );
    // Resuming after t2 in a room whose history keeps the last three: a gap, then t4, t5, t6.
    const stream = sse.subscribe({ room, cursor })[Symbol.asyncIterator]();
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push(textOf((await stream.next()).value as SubscribeResponse));
    expect(seen).toEqual(["<gap>", "t4", "t5", "t6"]);
    expect(gaps).toEqual([[GapReason.HISTORY_TRIMMED, ChatService.method.subscribe]]);

    // Reading, so the stream notices the drop (an SSE stream is read on demand).
    const next = stream.next();
    proxy.drop();
    await reconnects.until(1);
    expect(reconnects.values).toEqual([{ code: Code.Unavailable, delayMs: reconnects.values[0]!.delayMs, method: ChatService.method.subscribe }]);
    expect(reconnects.values[0]!.delayMs).toBeLessThanOrEqual(20);
    await chat.send({ room, text: "t7" }, bearer(token));
    expect(textOf((await next).value as SubscribeResponse)).toBe("t7");
    await stream.return?.();
  });

  it("retryableCodes and isRetryable: the codes worth a retry, and resource_exhausted only with retry-after", () => {
    expect([...retryableCodes].sort()).toEqual([Code.Aborted, Code.DeadlineExceeded, Code.Unavailable].sort());
    expect(isRetryable(new ConnectError("down", Code.Unavailable))).toBe(true);
    expect(isRetryable(new ConnectError("slow down", Code.ResourceExhausted, { "retry-after": "1" }))).toBe(true);
    expect(isRetryable(new ConnectError("too many streams", Code.ResourceExhausted))).toBe(false);
    expect(isRetryable(new ConnectError("no", Code.PermissionDenied))).toBe(false);
    expect(isRetryable(new Error("not a ConnectError"))).toBe(false);
  });
});
