import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { nextEvents, readSse, ssePath } from "../helpers/sse.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";
const textOf = (data: string) => (JSON.parse(data) as { message?: { text?: string } }).message?.text;

/**
 * The network drops an SSE stream mid-way (a TCP proxy destroys the
 * connection), messages are sent while the client is away, and the client
 * reconnects with Last-Event-ID: it receives exactly the missed messages,
 * once each, in order, then live ones.
 */
describe("SSE resume after the connection drops", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let token: string;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  beforeAll(async () => {
    server = await startTestServer({ config: { sseRetryMs: 10 } });
    proxy = await startTcpProxy(server.port);
    token = await server.token("alice");
    chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
  });
  afterAll(async () => {
    await proxy.close();
    await server.close();
  });

  const send = async (room: string, ...texts: string[]) => {
    const cursors = [];
    for (const text of texts) cursors.push((await chat.send({ room, text }, bearer(token))).message!.cursor);
    return cursors;
  };

  it("with the eventsource package: reconnects by itself and gets exactly the missed messages", async () => {
    const room = "sse-eventsource";
    const [, m2] = await send(room, "m1", "m2");
    const received: Array<{ text: string | undefined; id: string }> = [];
    const waiters: Array<{ count: number; resolve: () => void }> = [];
    const source = new EventSource(`${proxy.url}${ssePath(subscribe, { room, history: 2 })}`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } }),
    });
    source.onmessage = (event) => {
      received.push({ text: textOf(event.data as string), id: event.lastEventId });
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    };
    const receivedCount = (count: number) => new Promise<void>((resolve) => (received.length >= count ? resolve() : waiters.push({ count, resolve })));
    try {
      await receivedCount(2);
      expect(received).toEqual([
        { text: "m1", id: expect.any(String) },
        { text: "m2", id: m2 },
      ]);

      // The network goes down: the stream breaks and the client's reconnection waits.
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await send(room, "m3", "m4", "m5");
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      await receivedCount(5);
      const [m6] = await send(room, "m6");
      await receivedCount(6);
      expect(received.map((r) => r.text)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6"]);
      expect(received[5]!.id).toBe(m6);
      // The reconnection carried the last id it had seen.
      expect(proxy.requests.at(-1)).toMatch(new RegExp(`^last-event-id: ${m2}\\r$`, "im"));
    } finally {
      source.close();
    }
  });

  it("with a raw fetch reader: reconnecting with Last-Event-ID gives exactly the missed messages", async () => {
    const room = "sse-fetch";
    await send(room, "m1", "m2");
    const headers = { authorization: `Bearer ${token}` };
    const first = await fetch(`${proxy.url}${ssePath(subscribe, { room, history: 2 })}`, { headers });
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = readSse(first);
    const before = await nextEvents(events, 2);
    expect(before.map((e) => textOf(e.data))).toEqual(["m1", "m2"]);

    // The server's side of the connection goes away mid-stream.
    const pending = events.next();
    proxy.drop();
    await expect(pending).rejects.toThrow();
    await send(room, "m3", "m4", "m5");

    const second = await fetch(`${proxy.url}${ssePath(subscribe, { room, history: 2 })}`, { headers: { ...headers, "last-event-id": before[1]!.id! } });
    const resumed = readSse(second);
    const again = await nextEvents(resumed, 3);
    expect(again.map((e) => textOf(e.data))).toEqual(["m3", "m4", "m5"]);
    const [m6] = await send(room, "m6");
    const [live] = await nextEvents(resumed, 1);
    expect(live).toEqual({ event: undefined, id: m6, data: expect.stringContaining('"text":"m6"') });
    await resumed.return(undefined);
  });

  it("takes the position from the lastEventId query parameter too, and Last-Event-ID wins over the request's cursor", async () => {
    const room = "sse-query";
    const [m1, m2] = await send(room, "m1", "m2", "m3");
    const headers = { authorization: `Bearer ${token}` };
    const byQuery = readSse(await fetch(`${server.url}${ssePath(subscribe, { room }, { lastEventId: m1! })}`, { headers }));
    expect((await nextEvents(byQuery, 2)).map((e) => textOf(e.data))).toEqual(["m2", "m3"]);
    await byQuery.return(undefined);
    const byHeader = readSse(await fetch(`${server.url}${ssePath(subscribe, { room, cursor: m1 })}`, { headers: { ...headers, "last-event-id": m2! } }));
    expect((await nextEvents(byHeader, 1)).map((e) => textOf(e.data))).toEqual(["m3"]);
    await byHeader.return(undefined);
  });
});
