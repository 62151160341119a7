import { EventSource } from "eventsource";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createSseClient } from "../../src/client/sse.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { Redis } from "ioredis";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix, until } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { readSse, ssePath, type RawSseEvent } from "../helpers/sse.js";
import { roomTopic } from "../../src/services/chat.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * ChatService.Signal: ephemeral events delivered live to the Subscribe streams
 * that asked (`signals: true`), with the sender's identity and an empty
 * cursor; never stored, replayed or resumed, so a resume after a signal
 * continues from the last message. Real servers and real clients on every
 * transport, on the memory broker and across two instances over Redis.
 */
const transportNames = [
  "Connect over HTTP/1.1",
  "Connect over h2c",
  "gRPC over HTTP/1.1",
  "gRPC over h2c",
  "gRPC-Web over HTTP/1.1",
  "gRPC-Web over h2c",
  "WebSocket (typed transport)",
] as const;
type TransportName = (typeof transportNames)[number];
const subscribePath = "rivulet.chat.v1.ChatService/Subscribe";

/** A response as text: `message:<text>`, `signal:<user>:<kind>` or `gap`. */
function describeResponse(response: SubscribeResponse): string {
  switch (response.event.case) {
    case "message":
      return `message:${response.event.value.text}`;
    case "signal":
      return `signal:${response.event.value.userId}:${response.event.value.kind}`;
    default:
      return String(response.event.case);
  }
}

/**
 * Sends signals until `next` (a stream's pending next response) resolves: on
 * Redis a stream's SUBSCRIBE may still be on its way when it delivers its
 * first message, and a signal sent before it is lost by design. One signal
 * is enough on the memory broker. Resolves with that response.
 */
async function signalUntilReceived<T>(send: () => Promise<unknown>, next: Promise<T>): Promise<T> {
  let received: T | undefined;
  let settled = false;
  void next.then((value) => {
    received = value;
    settled = true;
  });
  for (let attempt = 0; attempt < 100 && !settled; attempt++) {
    await send();
    await Promise.race([next, new Promise((resolve) => setTimeout(resolve, 20 * Math.min(attempt, 5)))]);
  }
  if (!settled) throw new Error("no signal received");
  return received as T;
}

function webSocketTo(baseUrl: string, token: string): WebSocketTransport {
  return createWebSocketTransport({
    url: `${baseUrl.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}`,
    backoffInitialMs: 10,
    backoffMaxMs: 50,
  });
}

function transportsTo(baseUrl: string, webSocket: WebSocketTransport): Record<TransportName, Transport> {
  return {
    "Connect over HTTP/1.1": transportFor(baseUrl, "connect", "1.1"),
    "Connect over h2c": transportFor(baseUrl, "connect", "2"),
    "gRPC over HTTP/1.1": transportFor(baseUrl, "grpc", "1.1"),
    "gRPC over h2c": transportFor(baseUrl, "grpc", "2"),
    "gRPC-Web over HTTP/1.1": transportFor(baseUrl, "grpc-web", "1.1"),
    "gRPC-Web over h2c": transportFor(baseUrl, "grpc-web", "2"),
    "WebSocket (typed transport)": webSocket,
  };
}

describe("ChatService.Signal (memory broker)", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let alice: ReturnType<typeof bearer>;
  let bob: ReturnType<typeof bearer>;
  let aliceToken: string;
  let webSocket: WebSocketTransport;
  let transports: Record<TransportName, Transport>;
  beforeAll(async () => {
    server = await startTestServer({ config: { sseRetryMs: 10 } });
    proxy = await startTcpProxy(server.port);
    aliceToken = await server.token("alice");
    alice = bearer(aliceToken);
    bob = bearer(await server.token("bob"));
    webSocket = webSocketTo(server.url, aliceToken);
    transports = transportsTo(server.url, webSocket);
  });
  afterAll(async () => {
    webSocket?.close();
    await proxy?.close();
    await server?.close();
  });
  const sender = () => clientFor(ChatService, transportFor(server.url, "connect", "2"));

  it.each(transportNames)("reaches the streams that asked, from the caller, with kind, time and an empty cursor, and no others, over %s", async (name) => {
    const room = `signals-${name.replace(/\W+/g, "-")}`;
    const chat = clientFor(ChatService, transports[name]);
    const seed = (await sender().send({ room, text: "seed" }, bob)).message!;
    const abort = new AbortController();
    const asked = chat.subscribe({ room, history: 1, signals: true }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
    const plain = chat.subscribe({ room, history: 1 }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
    try {
      // Each stream is live once it delivered the history.
      expect(describeResponse((await asked.next()).value as SubscribeResponse)).toBe("message:seed");
      expect(describeResponse((await plain.next()).value as SubscribeResponse)).toBe("message:seed");
      const before = Date.now();
      // Signal's request has no author: bob is who the token says.
      await sender().signal({ room, kind: "typing" }, bob);
      const signal = (await asked.next()).value as SubscribeResponse;
      expect(describeResponse(signal)).toBe("signal:bob:typing");
      expect(signal.cursor).toBe("");
      const at = signal.event.case === "signal" ? timestampDate(signal.event.value.at!).getTime() : 0;
      expect(at).toBeGreaterThanOrEqual(before - 1000);
      expect(at).toBeLessThanOrEqual(Date.now() + 1000);
      // The message after it is the next thing on both streams: the plain one got no signal.
      await sender().send({ room, text: "after" }, bob);
      expect(describeResponse((await asked.next()).value as SubscribeResponse)).toBe("message:after");
      expect(describeResponse((await plain.next()).value as SubscribeResponse)).toBe("message:after");
      // Signals are not in the log: History, a history replay and a resume from the seed have messages only.
      const history = await chat.history({ room }, alice);
      expect(history.messages.map((message) => message.text)).toEqual(["seed", "after"]);
      const replayed = chat.subscribe({ room, history: 10, signals: true }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
      const resumed = chat.subscribe({ room, cursor: seed.cursor, signals: true }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
      expect(describeResponse((await replayed.next()).value as SubscribeResponse)).toBe("message:seed");
      expect(describeResponse((await replayed.next()).value as SubscribeResponse)).toBe("message:after");
      expect(describeResponse((await resumed.next()).value as SubscribeResponse)).toBe("message:after");
      // Both are live now and asked for signals: the next signal reaches them.
      await sender().signal({ room, kind: "stopped-typing" }, bob);
      expect(describeResponse((await replayed.next()).value as SubscribeResponse)).toBe("signal:bob:stopped-typing");
      expect(describeResponse((await resumed.next()).value as SubscribeResponse)).toBe("signal:bob:stopped-typing");
      await Promise.all([replayed.return?.(), resumed.return?.()]);
    } finally {
      abort.abort();
      await Promise.all([asked.return?.().catch(() => undefined), plain.return?.().catch(() => undefined)]);
    }
  });

  it("on SSE: an event without id, so Last-Event-ID stays on the last message and a reconnection resumes from it (eventsource package)", async () => {
    const room = "signals-eventsource";
    const seed = (await sender().send({ room, text: "seed" }, bob)).message!;
    const received: Array<{ data: string; id: string }> = [];
    const waiters: Array<{ count: number; resolve: () => void }> = [];
    const source = new EventSource(`${proxy.url}${ssePath(subscribePath, { room, history: 1, signals: true })}`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${aliceToken}` } }),
    });
    source.onmessage = (event) => {
      received.push({ data: event.data as string, id: event.lastEventId });
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    };
    const receivedCount = (count: number) => new Promise<void>((resolve) => (received.length >= count ? resolve() : waiters.push({ count, resolve })));
    try {
      await receivedCount(1);
      await sender().signal({ room, kind: "typing" }, bob);
      await receivedCount(2);
      const signal = JSON.parse(received[1]!.data) as { cursor?: string; signal?: { userId?: string; kind?: string; at?: string } };
      expect(signal.cursor ?? "").toBe("");
      expect(signal.signal).toMatchObject({ userId: "bob", kind: "typing", at: expect.any(String) });
      expect(received.map((event) => event.id)).toEqual([seed.cursor, seed.cursor]);

      // The connection drops right after the signal: the reconnection asks for what follows the seed.
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await sender().send({ room, text: "missed" }, bob);
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      await receivedCount(3);
      expect(JSON.parse(received[2]!.data)).toMatchObject({ message: { text: "missed" } });
      expect(proxy.requests.at(-1)).toMatch(new RegExp(`^last-event-id: ${seed.cursor}\\r$`, "im"));
      expect(received).toHaveLength(3);
    } finally {
      source.close();
    }
  });

  it("on SSE: the wire has no id: line for a signal (raw reader), and a stream that did not ask has no signal event", async () => {
    const room = "signals-raw-sse";
    const seed = (await sender().send({ room, text: "seed" }, bob)).message!;
    const abort = new AbortController();
    const headers = { authorization: `Bearer ${aliceToken}`, accept: "text/event-stream" };
    const open = async (signals: boolean) =>
      readSse(await fetch(`${server.url}${ssePath(subscribePath, { room, history: 1, signals })}`, { headers, signal: abort.signal }))[Symbol.asyncIterator]();
    /** The next message or error event, skipping retry and comments. */
    const nextEvent = async (events: AsyncIterator<RawSseEvent>) => {
      for (;;) {
        const { value, done } = await events.next();
        if (done) throw new Error("the stream ended");
        if (value.event !== "retry" && value.event !== "comment") return value;
      }
    };
    try {
      const asked = await open(true);
      const plain = await open(false);
      expect(await nextEvent(asked)).toMatchObject({ id: seed.cursor });
      expect(await nextEvent(plain)).toMatchObject({ id: seed.cursor });
      await sender().signal({ room, kind: "typing" }, bob);
      const signal = await nextEvent(asked);
      expect(signal.id).toBeUndefined();
      expect(signal.event).toBeUndefined();
      expect(JSON.parse(signal.data)).toMatchObject({ signal: { userId: "bob", kind: "typing" } });
      const after = (await sender().send({ room, text: "after" }, bob)).message!;
      expect(await nextEvent(asked)).toMatchObject({ id: after.cursor });
      expect(await nextEvent(plain)).toMatchObject({ id: after.cursor });
    } finally {
      abort.abort();
    }
  });

  it("on SSE with src/client/sse.ts: a reconnection right after a signal resumes from the last message", async () => {
    const room = "signals-sse-client";
    await sender().send({ room, text: "seed" }, bob);
    const client = createSseClient({ baseUrl: proxy.url, token: aliceToken, backoff: { initialMs: 10, maxMs: 50 } });
    const abort = new AbortController();
    // history: 2, so a reconnection that lost the last id (a fresh start) would replay "missed" again.
    const stream = client.subscribe(ChatService.method.subscribe, { room, history: 2, signals: true }, { signal: abort.signal })[Symbol.asyncIterator]();
    try {
      expect(describeResponse((await stream.next()).value as SubscribeResponse)).toBe("message:seed");
      await sender().signal({ room, kind: "typing" }, bob);
      expect(describeResponse((await stream.next()).value as SubscribeResponse)).toBe("signal:bob:typing");
      const next = stream.next(); // reading when the connection breaks, so the client sees it break
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await sender().send({ room, text: "missed" }, bob);
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      // Resumed after the seed: the missed message, not the seed again.
      expect(describeResponse((await next).value as SubscribeResponse)).toBe("message:missed");

      // A new connection whose first event is a signal: the client keeps the id of the last message.
      const signalFirst = stream.next();
      const reconnections = proxy.connections();
      proxy.drop({ hold: true });
      await proxy.waitForConnections(reconnections + 1);
      proxy.release();
      const signal = await signalUntilReceived(() => sender().signal({ room, kind: "typing" }, bob), signalFirst);
      expect(describeResponse(signal.value as SubscribeResponse)).toBe("signal:bob:typing");
      const later = stream.next();
      const again = proxy.connections();
      proxy.drop({ hold: true });
      await sender().send({ room, text: "missed-again" }, bob);
      await proxy.waitForConnections(again + 1);
      proxy.release();
      let response = (await later).value as SubscribeResponse;
      while (response.event.case === "signal") response = (await stream.next()).value as SubscribeResponse;
      expect(describeResponse(response)).toBe("message:missed-again");
    } finally {
      abort.abort();
      await stream.return?.().catch(() => undefined);
    }
  });

  it("on WebSocket: a reconnection right after a signal resumes from the last message", async () => {
    const room = "signals-ws-resume";
    await sender().send({ room, text: "seed" }, bob);
    const transport = webSocketTo(proxy.url, aliceToken);
    const abort = new AbortController();
    // history: 2, so a resume that lost the cursor (a fresh start) would replay "seed" again.
    const stream = clientFor(ChatService, transport).subscribe({ room, history: 2, signals: true }, { signal: abort.signal })[Symbol.asyncIterator]();
    try {
      expect(describeResponse((await stream.next()).value as SubscribeResponse)).toBe("message:seed");
      await sender().signal({ room, kind: "typing" }, bob);
      expect(describeResponse((await stream.next()).value as SubscribeResponse)).toBe("signal:bob:typing");
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await sender().send({ room, text: "missed" }, bob);
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      expect(describeResponse((await stream.next()).value as SubscribeResponse)).toBe("message:missed");
    } finally {
      abort.abort();
      await stream.return?.().catch(() => undefined);
      transport.close();
    }
  });

  it.each([
    ["an empty kind", { room: "ok", kind: "" }, "kind is required"],
    ["a kind of 33 characters", { room: "ok", kind: "k".repeat(33) }, "kind is longer than 32 characters"],
    ["a kind with a space", { room: "ok", kind: "is typing" }, "kind may contain only letters, digits, '-', '_' and '.'"],
    ["an empty room", { room: "", kind: "typing" }, "room is required"],
    ["a room with a slash", { room: "a/b", kind: "typing" }, "room may contain only letters, digits, '-', '_', '.', ':', '#', ',' and '@'"],
  ])("refuses %s with invalid_argument", async (_, request, message) => {
    const error = await sender()
      .signal(request, bob)
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toBe(message);
  });

  it("accepts a kind of exactly 32 characters", async () => {
    await expect(sender().signal({ room: "ok", kind: "k".repeat(32) }, bob)).resolves.toBeDefined();
  });

  it("needs a token", async () => {
    const error = await sender()
      .signal({ room: "ok", kind: "typing" })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.Unauthenticated);
  });
});

describe("ChatService.Signal counts against the write rate", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ config: { publishRate: 0.001, publishBurst: 3 } });
  });
  afterAll(() => server?.close());

  it("a burst past --publish-burst gets resource_exhausted, and Send shares the budget", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const carol = bearer(await server.token("carol"));
    await chat.signal({ room: "rate", kind: "typing" }, carol);
    await chat.signal({ room: "rate", kind: "typing" }, carol);
    await chat.send({ room: "rate", text: "hi" }, carol);
    const error = await chat.signal({ room: "rate", kind: "typing" }, carol).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.ResourceExhausted);
    // Another user has a budget of their own.
    await expect(chat.signal({ room: "rate", kind: "typing" }, bearer(await server.token("dave")))).resolves.toBeDefined();
  });
});

/** How many connections are subscribed to a Pub/Sub channel (PUBSUB NUMSUB). */
async function subscribers(channel: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const reply = (await redis.call("PUBSUB", "NUMSUB", channel)) as [string, number];
    return Number(reply[1]);
  } finally {
    redis.disconnect();
  }
}

describe.runIf(redisAvailable())("ChatService.Signal across two instances over Redis", () => {
  const prefix = uniquePrefix();
  let a: TestServer;
  let b: TestServer;
  let token: string;
  beforeAll(async () => {
    a = await startTestServer({ config: { broker: redisUrl, redisPrefix: prefix } });
    b = await startTestServer({ config: { broker: redisUrl, redisPrefix: prefix } });
    token = await a.token("alice");
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await deleteKeys(prefix);
  });

  it.each(["Connect over h2c", "gRPC over h2c", "WebSocket (typed transport)"] as const)(
    "a signal sent to one instance reaches a stream on the other, and is not stored, over %s",
    async (name) => {
      const room = `signals-redis-${name.replace(/\W+/g, "-")}`;
      const webSocket = webSocketTo(a.url, token);
      const onA = clientFor(ChatService, transportsTo(a.url, webSocket)[name]);
      const onB = clientFor(ChatService, transportFor(b.url, "connect", "2"));
      const bob = bearer(await b.token("bob"));
      await onB.send({ room, text: "seed" }, bob);
      const abort = new AbortController();
      const stream = onA.subscribe({ room, history: 1, signals: true }, { ...bearer(token), signal: abort.signal })[Symbol.asyncIterator]();
      try {
        expect(describeResponse((await stream.next()).value as SubscribeResponse)).toBe("message:seed");
        const first = await signalUntilReceived(() => onB.signal({ room, kind: "typing" }, bob), stream.next());
        const signal = first.value as SubscribeResponse;
        expect(describeResponse(signal)).toBe("signal:bob:typing");
        expect(signal.cursor).toBe("");
        // Probes may still be arriving: skip them up to the next message.
        await onB.send({ room, text: "after" }, bob);
        let next = (await stream.next()).value as SubscribeResponse;
        while (next.event.case === "signal") next = (await stream.next()).value as SubscribeResponse;
        expect(describeResponse(next)).toBe("message:after");
        const history = await onA.history({ room }, bearer(token));
        expect(history.messages.map((message) => message.text)).toEqual(["seed", "after"]);
        // The stream ending stops its listener: instance A unsubscribes from the room's channel.
        const channel = `${prefix}{${roomTopic(room)}}:signals`;
        expect(await subscribers(channel)).toBe(1);
        abort.abort();
        await stream.return?.().catch(() => undefined);
        await until(async () => (await subscribers(channel)) === 0, "the UNSUBSCRIBE of the ended stream");
      } finally {
        abort.abort();
        await stream.return?.().catch(() => undefined);
        webSocket.close();
      }
    },
  );
});
