// The WebSocket transport's outbox in Node, with the memory store: writes made
// while the connection is held down wait in order and go out one at a time
// when it returns; a transport created later on the same store replays what
// an earlier one left (the Node picture of a reloaded page); errors reach the
// caller, or onOutboxError when nobody waits. The Chromium test with IndexedDB
// is test/websocket/outbox-browser.test.ts.
import { create, toBinary } from "@bufbuild/protobuf";
import { EventEmitter, once } from "node:events";
import { Code, createClient, type ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatService, SendRequestSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createMemoryOutbox, type OutboxEntry, type OutboxStore } from "../../src/client/outbox.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/** A memory store that counts what went through it, so tests wait on puts and deletes rather than poll. */
function observedStore() {
  const memory = createMemoryOutbox();
  const events = new EventEmitter();
  const counts = { put: 0, delete: 0 };
  const store: OutboxStore = {
    async put(entry) {
      const stored = await memory.put(entry);
      counts.put++;
      events.emit("change");
      return stored;
    },
    list: () => memory.list(),
    async delete(id) {
      await memory.delete(id);
      counts.delete++;
      events.emit("change");
    },
  };
  return {
    store,
    counts,
    /** Resolves once `count` entries have been put (or deleted) in total. */
    async until(kind: "put" | "delete", count: number) {
      while (counts[kind] < count) await once(events, "change");
    },
  };
}

describe("the memory outbox store", () => {
  it("lists entries in the order they were put, and forgets deleted ones", async () => {
    const store = createMemoryOutbox();
    const entry = (key: string) => ({ method: "m", request: new Uint8Array([1]), headers: {}, idempotencyKey: key, queuedAt: 0 });
    const a = await store.put(entry("a"));
    const b = await store.put(entry("b"));
    const c = await store.put(entry("c"));
    expect([a.id < b.id, b.id < c.id]).toEqual([true, true]);
    await store.delete(b.id);
    await store.delete(999);
    expect((await store.list()).map((e) => e.idempotencyKey)).toEqual(["a", "c"]);
  });
});

describe("the WebSocket transport's outbox (memory store, through a proxy cut and restored)", () => {
  let server: TestServer;
  let proxy: TcpProxy | undefined;
  let token: string;
  const transports: WebSocketTransport[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    token = await server.token("alice");
  });
  afterEach(async () => {
    for (const t of transports.splice(0)) t.close();
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(() => server.close());

  async function offlineTransport(store: OutboxStore, onOutboxError?: (error: ConnectError, entry: OutboxEntry | undefined) => void) {
    const cut = await startTcpProxy(server.port);
    proxy = cut;
    cut.drop({ hold: true });
    const transport = createWebSocketTransport({
      url: `${cut.url.replace(/^http/, "ws")}/ws?access_token=${token}`,
      backoffInitialMs: 20,
      backoffMaxMs: 100,
      outbox: store,
      onOutboxError,
    });
    transports.push(transport);
    return { transport, proxy: cut };
  }

  async function history(room: string) {
    const reader = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const { messages } = await reader.history({ room }, bearer(token));
    return messages.map((m) => m.text);
  }

  it("holds three sends made offline and sends them in order when the connection returns", async () => {
    const { store, until } = observedStore();
    const { transport, proxy: cut } = await offlineTransport(store);
    const chat = createClient(ChatService, transport);
    const room = "outbox-node-order";
    const sends = ["one", "two", "three"].map((text) => chat.send({ room, text }));
    await cut.waitForConnections(1);
    // All three are stored, each with a key of its own, while the socket waits.
    await until("put", 3);
    const keys = (await store.list()).map((e) => e.idempotencyKey);
    expect(new Set(keys).size).toBe(3);
    expect(keys.every((k) => /^[0-9a-f]{32}$/.test(k))).toBe(true);
    cut.release();
    const responses = await Promise.all(sends);
    expect(responses.map((r) => r.message?.text)).toEqual(["one", "two", "three"]);
    expect(await store.list()).toEqual([]);
    expect(await history(room)).toEqual(["one", "two", "three"]);
  });

  it("replays entries an earlier transport left in the store, once, with onOutboxError for one the server refuses", async () => {
    const { store, until } = observedStore();
    const room = "outbox-node-reload";
    const { transport: first } = await offlineTransport(store);
    const chat = createClient(ChatService, first);
    const sends = [chat.send({ room, text: "a" }), chat.send({ room, text: "" }), chat.send({ room, text: "b" })];
    await until("put", 3);
    // The page goes away: nobody awaits these writes any more, but they stay queued.
    first.close();
    for (const send of sends) await expect(send).rejects.toMatchObject({ code: Code.Canceled });
    expect((await store.list()).map((e) => e.method)).toEqual(Array(3).fill("rivulet.chat.v1.ChatService/Send"));

    // The next "page": a transport on the same store, straight to the server, with nobody awaiting.
    const errors: { code: Code; message: string; entry: number | undefined }[] = [];
    transports.push(
      createWebSocketTransport({
        url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${token}`,
        outbox: store,
        onOutboxError: (error, entry) => errors.push({ code: error.code, message: error.rawMessage, entry: entry?.id }),
      }),
    );
    await until("delete", 3);
    expect(await store.list()).toEqual([]);
    expect(errors).toEqual([{ code: Code.InvalidArgument, message: "text is required", entry: 2 }]);
    expect(await history(room)).toEqual(["a", "b"]);
  });

  it("does not post twice an entry the server already stored (its key is replayed)", async () => {
    const { store } = observedStore();
    const room = "outbox-node-dedupe";
    const request = create(SendRequestSchema, { room, text: "once", idempotencyKey: "outbox-node-dedupe-key" });
    // The write reached the server, but the page went away before it could delete the entry.
    await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).send(request, bearer(token));
    await store.put({
      method: "rivulet.chat.v1.ChatService/Send",
      request: toBinary(SendRequestSchema, request),
      headers: {},
      idempotencyKey: request.idempotencyKey,
      queuedAt: Date.now(),
    });
    const { transport, proxy: cut } = await offlineTransport(store);
    // A write made now queues behind the replayed entry and is answered after it.
    const later = createClient(ChatService, transport).send({ room, text: "later" });
    cut.release();
    expect((await later).message?.text).toBe("later");
    expect(await store.list()).toEqual([]);
    expect(await history(room)).toEqual(["once", "later"]);
  });

  it("asks a token function again when a queued write's token is refused, rather than dropping the write", async () => {
    const { store } = observedStore();
    const room = "outbox-node-token";
    const asked: string[] = [];
    // The first token is what a page that waited offline past its token's expiry would send.
    const tokens = ["not-a-jwt", token];
    const transport = createWebSocketTransport({
      url: `${server.url.replace(/^http/, "ws")}/ws`,
      token: () => (asked.push("token"), tokens.shift() ?? "not-a-jwt"),
      outbox: store,
    });
    transports.push(transport);
    // A fresh transport is not open yet: the write goes through the outbox.
    const { message } = await createClient(ChatService, transport).send({ room, text: "after a refresh" });
    expect(message?.author).toBe("alice");
    expect(asked).toHaveLength(2);
    expect(await history(room)).toEqual(["after a refresh"]);
  });

  it("drops a queued write whose fresh token is refused too, and says why", async () => {
    const { store } = observedStore();
    const transport = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws`, token: () => "not-a-jwt", outbox: store });
    transports.push(transport);
    await expect(createClient(ChatService, transport).send({ room: "outbox-node-refused", text: "never" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: "invalid token",
    });
    expect(await store.list()).toEqual([]);
  });

  it("fails a write the store cannot hold with resource_exhausted, saying why", async () => {
    const memory = createMemoryOutbox();
    const full: OutboxStore = {
      put: () => Promise.reject(new DOMException("the quota has been exceeded", "QuotaExceededError")),
      list: () => memory.list(),
      delete: (id) => memory.delete(id),
    };
    const { transport } = await offlineTransport(full);
    await expect(createClient(ChatService, transport).send({ room: "outbox-node-full", text: "no room" })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
      rawMessage: "the outbox could not store the write (QuotaExceededError: the quota has been exceeded)",
    });
  });

  it("takes back a queued write whose caller aborts before it was sent", async () => {
    const { store, until } = observedStore();
    const room = "outbox-node-abort";
    const { transport, proxy: cut } = await offlineTransport(store);
    const chat = createClient(ChatService, transport);
    const abort = new AbortController();
    const first = chat.send({ room, text: "kept 1" });
    const aborted = chat.send({ room, text: "aborted" }, { signal: abort.signal });
    const last = chat.send({ room, text: "kept 2" });
    await until("put", 3);
    await cut.waitForConnections(1);
    abort.abort();
    await expect(aborted).rejects.toMatchObject({ code: Code.Canceled });
    await until("delete", 1);
    cut.release();
    await Promise.all([first, last]);
    expect(await history(room)).toEqual(["kept 1", "kept 2"]);
  });

  it("leaves writes without an idempotency key (Signal) out of the outbox: held in memory as without one", async () => {
    const { store, until } = observedStore();
    const { transport, proxy: cut } = await offlineTransport(store);
    const chat = createClient(ChatService, transport);
    const signal = chat.signal({ room: "outbox-node-signal", kind: "typing" });
    const send = chat.send({ room: "outbox-node-signal", text: "hi" });
    await until("put", 1);
    expect((await store.list()).map((e) => e.method)).toEqual(["rivulet.chat.v1.ChatService/Send"]);
    cut.release();
    await expect(Promise.all([signal, send])).resolves.toHaveLength(2);
  });

  it("sends directly, without the store, while the socket is open and nothing is queued", async () => {
    const { store, counts } = observedStore();
    const { transport, proxy: cut } = await offlineTransport(store);
    cut.release();
    const chat = createClient(ChatService, transport);
    await chat.send({ room: "outbox-node-direct", text: "first, queued" });
    expect(transport.state).toBe("open");
    await chat.send({ room: "outbox-node-direct", text: "second, direct" });
    expect(counts).toEqual({ put: 1, delete: 1 });
    expect(await history("outbox-node-direct")).toEqual(["first, queued", "second, direct"]);
  });
});
