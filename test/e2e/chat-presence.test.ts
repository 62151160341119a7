import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type WatchPresenceResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * ChatService.WatchPresence: the room's members first, then who joined and
 * left, where a user is present while at least one of their Subscribe
 * streams to the room is open. Real servers and real clients on every
 * transport, on the memory broker and across two instances over Redis (the
 * SIGKILL case is in test/redis/presence.test.ts; conflation, which needs a
 * consumer that does not read, in test/services/presence-changes.test.ts).
 */
const transportNames = [
  "Connect over HTTP/1.1",
  "Connect over h2c",
  "gRPC over h2c",
  "gRPC-Web over HTTP/1.1",
  "gRPC-Web over h2c",
  "WebSocket (typed transport)",
  "SSE (typed transport)",
] as const;
type TransportName = (typeof transportNames)[number];

/** A response as text: `members:a,b joined:c left:d`, each list in its order. */
function describePresence(response: WatchPresenceResponse): string {
  return `members:${response.members.join(",")} joined:${response.joined.join(",")} left:${response.left.join(",")}`;
}

/** One user's way to the server over one transport: the token rides in the transport (WebSocket, SSE) or in the headers. */
interface Caller {
  readonly transport: Transport;
  readonly headers: { authorization: string };
  close(): void;
}

function callerOn(name: TransportName, baseUrl: string, token: string): Caller {
  const headers = bearer(token).headers;
  let webSocket: WebSocketTransport | undefined;
  let transport: Transport;
  switch (name) {
    case "Connect over HTTP/1.1":
      transport = transportFor(baseUrl, "connect", "1.1");
      break;
    case "Connect over h2c":
      transport = transportFor(baseUrl, "connect", "2");
      break;
    case "gRPC over h2c":
      transport = transportFor(baseUrl, "grpc", "2");
      break;
    case "gRPC-Web over HTTP/1.1":
      transport = transportFor(baseUrl, "grpc-web", "1.1");
      break;
    case "gRPC-Web over h2c":
      transport = transportFor(baseUrl, "grpc-web", "2");
      break;
    case "WebSocket (typed transport)":
      transport = webSocket = createWebSocketTransport({
        url: `${baseUrl.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}`,
        backoffInitialMs: 10,
        backoffMaxMs: 50,
      });
      break;
    case "SSE (typed transport)":
      transport = createSseTransport({ baseUrl, token });
      break;
  }
  return { transport, headers, close: () => webSocket?.close() };
}

/** A stream held open: `next()` reads its next response, `close()` ends it from the client. */
interface OpenStream<T> {
  next(): Promise<T>;
  close(): Promise<void>;
}

function open<T>(start: (signal: AbortSignal) => AsyncIterable<T>): OpenStream<T> {
  const abort = new AbortController();
  const iterator = start(abort.signal)[Symbol.asyncIterator]();
  return {
    async next() {
      const result = await iterator.next();
      if (result.done) throw new Error("the stream ended");
      return result.value;
    },
    async close() {
      abort.abort();
      await iterator.return?.().catch(() => undefined);
    },
  };
}

/**
 * Opens a tab: a Subscribe stream to the room, read up to its first message
 * (the seed), so the server is streaming it, and so counting it, once this
 * resolves.
 */
async function openTab(caller: Caller, room: string): Promise<OpenStream<unknown>> {
  const chat = clientFor(ChatService, caller.transport);
  const tab = open((signal) => chat.subscribe({ room, history: 1 }, { headers: caller.headers, signal }));
  await tab.next();
  return tab;
}

describe("ChatService.WatchPresence (memory broker)", () => {
  let server: TestServer;
  const tokens = new Map<string, string>();
  beforeAll(async () => {
    server = await startTestServer();
    for (const user of ["alice", "bob", "carol"]) tokens.set(user, await server.token(user));
  });
  afterAll(() => server?.close());

  it.each(transportNames)("lists the members first, then joins and leaves: a second tab and closing one of two say nothing, over %s", async (name) => {
    const room = `presence-${name.replace(/\W+/g, "-")}`;
    const [alice, bob, carol] = ["alice", "bob", "carol"].map((user) => callerOn(name, server.url, tokens.get(user)!)) as [Caller, Caller, Caller];
    const streams: OpenStream<unknown>[] = [];
    try {
      await clientFor(ChatService, transportFor(server.url, "connect", "2")).send({ room, text: "seed" }, bearer(tokens.get("carol")!));
      const carolsTab = await openTab(carol, room);
      streams.push(carolsTab);
      // Alice watches: she is not present for it.
      const watcher = open((signal) => clientFor(ChatService, alice.transport).watchPresence({ room }, { headers: alice.headers, signal }));
      streams.push(watcher as OpenStream<unknown>);
      const first = await watcher.next();
      expect(describePresence(first)).toBe("members:carol joined: left:");

      const bobsFirstTab = await openTab(bob, room);
      streams.push(bobsFirstTab);
      expect(describePresence(await watcher.next())).toBe("members: joined:bob left:");
      const bobsSecondTab = await openTab(bob, room);
      streams.push(bobsSecondTab);
      await bobsFirstTab.close();
      // Neither the second tab nor closing the first was news: the next response is the last tab closing.
      await bobsSecondTab.close();
      expect(describePresence(await watcher.next())).toBe("members: joined: left:bob");
      await carolsTab.close();
      expect(describePresence(await watcher.next())).toBe("members: joined: left:carol");
    } finally {
      for (const stream of streams) await stream.close();
      for (const caller of [alice, bob, carol]) caller.close();
    }
  });

  it("lists members sorted, counts a tab on each transport as the same user, and starts a new watcher with the current list", async () => {
    const room = "presence-mixed";
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    await chat.send({ room, text: "seed" }, bearer(tokens.get("alice")!));
    const callers: Caller[] = [];
    const streams: OpenStream<unknown>[] = [];
    try {
      for (const user of ["carol", "alice", "bob"]) {
        const caller = callerOn("WebSocket (typed transport)", server.url, tokens.get(user)!);
        callers.push(caller);
        streams.push(await openTab(caller, room));
      }
      const watcher = open((signal) => chat.watchPresence({ room }, { ...bearer(tokens.get("alice")!), signal }));
      streams.push(watcher as OpenStream<unknown>);
      expect(describePresence(await watcher.next())).toBe("members:alice,bob,carol joined: left:");
      // Bob's second tab over SSE: still one bob.
      const sse = callerOn("SSE (typed transport)", server.url, tokens.get("bob")!);
      const sseTab = await openTab(sse, room);
      streams.push(sseTab);
      await streams[2]!.close(); // bob's WebSocket tab
      const again = open((signal) => chat.watchPresence({ room }, { ...bearer(tokens.get("carol")!), signal }));
      streams.push(again as OpenStream<unknown>);
      expect(describePresence(await again.next())).toBe("members:alice,bob,carol joined: left:");
      await sseTab.close();
      expect(describePresence(await watcher.next())).toBe("members: joined: left:bob");
      expect(describePresence(await again.next())).toBe("members: joined: left:bob");
    } finally {
      for (const stream of streams) await stream.close();
      for (const caller of callers) caller.close();
    }
  });

  it.each(["", "bad room!", "x".repeat(201)])("refuses room %j with invalid_argument", async (room) => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const failure = await (async () => {
      for await (const _ of chat.watchPresence({ room }, bearer(tokens.get("alice")!))) return undefined;
      return undefined;
    })().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe(Code.InvalidArgument);
  });
});

describe.runIf(redisAvailable())("ChatService.WatchPresence across two instances over Redis", () => {
  const prefix = uniquePrefix();
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    a = await startTestServer({ config: { broker: redisUrl, redisPrefix: prefix } });
    b = await startTestServer({ config: { broker: redisUrl, redisPrefix: prefix } });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await deleteKeys(prefix);
  });

  it.each(["Connect over h2c", "WebSocket (typed transport)", "SSE (typed transport)"] as const)(
    "a user subscribed on one instance is present for a watcher on the other, tabs on both instances counting as one, over %s",
    async (name) => {
      const room = `presence-redis-${name.replace(/\W+/g, "-")}`;
      const aliceToken = await a.token("alice");
      const bobToken = await b.token("bob");
      const watcherCaller = callerOn(name, a.url, aliceToken);
      const bobOnB = callerOn(name, b.url, bobToken);
      const bobOnA = callerOn(name, a.url, bobToken);
      const streams: OpenStream<unknown>[] = [];
      try {
        await clientFor(ChatService, transportFor(b.url, "connect", "2")).send({ room, text: "seed" }, bearer(bobToken));
        const watcher = open((signal) => clientFor(ChatService, watcherCaller.transport).watchPresence({ room }, { headers: watcherCaller.headers, signal }));
        streams.push(watcher as OpenStream<unknown>);
        expect(describePresence(await watcher.next())).toBe("members: joined: left:");
        const tabOnB = await openTab(bobOnB, room);
        streams.push(tabOnB);
        expect(describePresence(await watcher.next())).toBe("members: joined:bob left:");
        const tabOnA = await openTab(bobOnA, room);
        streams.push(tabOnA);
        await tabOnB.close();
        // Bob is still present through instance A: the next response is his last tab closing.
        await tabOnA.close();
        expect(describePresence(await watcher.next())).toBe("members: joined: left:bob");
      } finally {
        for (const stream of streams) await stream.close();
        for (const caller of [watcherCaller, bobOnB, bobOnA]) caller.close();
      }
    },
  );
});
