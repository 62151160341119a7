import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { GapReason, type Gap } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { createSseClient } from "../../src/client/sse.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { bearer, clientFor, collect, take, transportFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

const textOf = (r: SubscribeResponse) => (r.event.case === "message" ? r.event.value.text : `gap:${r.event.case === "gap" ? r.event.value.reason : "?"}`);

/** src/client/sse.ts against the real server, through a proxy that drops and freezes connections. */
describe("SSE client", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let token: string;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  beforeAll(async () => {
    server = await startTestServer({ config: { keepaliveMs: 100, historyCount: 3 }, extraServices: () => [counterService()] });
    proxy = await startTcpProxy(server.port);
    token = await server.token("alice");
    chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
  });
  afterAll(async () => {
    await proxy.close();
    await server.close();
  });

  const send = async (room: string, ...texts: string[]) => {
    for (const text of texts) await chat.send({ room, text }, bearer(token));
  };

  it("yields typed messages and resumes after a drop with exactly the missed ones", async () => {
    const room = "client-drop";
    await send(room, "m1", "m2");
    const reasons: string[] = [];
    const client = createSseClient({ baseUrl: proxy.url, token, backoff: { initialMs: 20 } });
    const subscription = client.subscribe(
      ChatService.method.subscribe,
      { room, history: 2 },
      { onReconnect: (reason) => reasons.push(reason.code.toString()) },
    );
    const stream = subscription[Symbol.asyncIterator]();
    const next = async () => textOf((await stream.next()).value as SubscribeResponse);
    try {
      expect([await next(), await next()]).toEqual(["m1", "m2"]);
      const third = next(); // reading when the connection breaks
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await send(room, "m3");
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      expect(await third).toBe("m3");
      await send(room, "m4");
      expect(await next()).toBe("m4");
      expect(reasons).toEqual(["14"]); // one reconnection, for `unavailable`
    } finally {
      await stream.return?.();
    }
  });

  it("detects a silent server by its missing keep-alives and reconnects", async () => {
    const room = "client-silent";
    await send(room, "m1");
    const reasons: string[] = [];
    const client = createSseClient({ baseUrl: proxy.url, token, silenceTimeoutMs: 500, backoff: { initialMs: 20 } });
    const subscription = client.subscribe(ChatService.method.subscribe, { room, history: 1 }, { onReconnect: (reason) => reasons.push(reason.rawMessage) });
    const stream = subscription[Symbol.asyncIterator]();
    try {
      expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("m1");
      // The connection stays open but nothing arrives any more: no messages, no keep-alives.
      proxy.freeze();
      await send(room, "m2");
      expect(textOf((await stream.next()).value as SubscribeResponse)).toBe("m2");
      expect(reasons).toEqual(["no data or keep-alive from the server for 500 ms"]);
    } finally {
      await stream.return?.();
    }
  });

  it("surfaces a gap when history was trimmed", async () => {
    const room = "client-gap";
    await send(room, "t1");
    const first = (await chat.send({ room, text: "t2" }, bearer(token))).message!.cursor;
    await send(room, "t3", "t4", "t5", "t6");
    const gaps: Gap[] = [];
    const client = createSseClient({ baseUrl: server.url, token });
    const seen = await take(client.subscribe(ChatService.method.subscribe, { room }, { lastEventId: first, onGap: (gap) => gaps.push(gap) }), 4);
    expect(seen.map(textOf)).toEqual([`gap:${GapReason.HISTORY_TRIMMED}`, "t4", "t5", "t6"]);
    expect(gaps.map((g) => g.reason)).toEqual([GapReason.HISTORY_TRIMMED]);
  });

  it("stops at the end of a stream, and at once when it had already finished (204)", async () => {
    const client = createSseClient({ baseUrl: server.url, token });
    expect((await collect(client.subscribe(CounterService.method.count, { to: 3 }))).map((r) => r.value)).toEqual([1, 2, 3]);
    expect(await collect(client.subscribe(CounterService.method.count, { to: 3 }, { lastEventId: "3" }))).toEqual([]);
  });

  it("stops with the code for failures retrying cannot fix", async () => {
    const progress = clientFor(ProgressService, transportFor(server.url, "connect", "2"));
    const { job } = await progress.start({ kind: "export" }, bearer(await server.token("bob")));
    const client = createSseClient({ baseUrl: server.url, token });
    await expect(collect(client.subscribe(ProgressService.method.watch, { jobId: job!.id }))).rejects.toMatchObject({
      code: 7,
      rawMessage: "only the job's owner or a worker may watch it",
    });
    const stranger = createSseClient({ baseUrl: server.url, token: "not.a.jwt" });
    await expect(collect(stranger.subscribe(ChatService.method.subscribe, { room: "r" }))).rejects.toMatchObject({ code: 16, rawMessage: "invalid token" });
    await expect(collect(client.subscribe(CounterService.method.count, { to: 0 }))).rejects.toMatchObject({ code: 3, rawMessage: "to must be 1 to 1000000" });
  });

  it("stops at once on a 200 that is not an event stream (a proxy's page)", async () => {
    const page = http.createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<h1>Welcome to our proxy</h1>"));
    page.listen(0, "127.0.0.1");
    await once(page, "listening");
    try {
      const client = createSseClient({ baseUrl: `http://127.0.0.1:${(page.address() as AddressInfo).port}`, token });
      await expect(collect(client.subscribe(ChatService.method.subscribe, { room: "r" }))).rejects.toMatchObject({
        code: 13,
        rawMessage: "expected text/event-stream, got text/html",
      });
    } finally {
      page.close();
    }
  });

  it("ends with canceled when the caller aborts", async () => {
    const controller = new AbortController();
    const client = createSseClient({ baseUrl: server.url, token });
    const stream = client.subscribe(ChatService.method.subscribe, { room: "client-abort" }, { signal: controller.signal })[Symbol.asyncIterator]();
    const next = stream.next();
    controller.abort();
    await expect(next).rejects.toMatchObject({ code: 1 });
  });
});

describe("SSE transport for generated clients", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ extraServices: () => [counterService()] });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it("runs createClient(ChatService, sseTransport) unchanged: streams over SSE, unary calls over the given transport", async () => {
    const chat = createClient(ChatService, createSseTransport({ baseUrl: server.url, token, unaryTransport: transportFor(server.url, "connect", "1.1") }));
    const sent = await chat.send({ room: "transport", text: "hello" }, bearer(token));
    const [first] = await take(chat.subscribe({ room: "transport", history: 1 }), 1);
    expect(first).toMatchObject({ cursor: sent.message!.cursor, event: { case: "message", value: { text: "hello", author: "alice" } } });
  });

  it("without a unary transport, unary calls fail with unimplemented", async () => {
    const counter = createClient(CounterService, createSseTransport({ baseUrl: server.url, token }));
    await expect(counter.echo({ text: "x" })).rejects.toMatchObject({ code: 12 });
    expect((await collect(counter.count({ to: 2 }))).map((r) => r.value)).toEqual([1, 2]);
  });
});
