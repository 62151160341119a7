import { EventSource } from "eventsource";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { eventSourceLog, launchChromium, openEventSource, openPageAt } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { getRawSse, nextEvents, readSse, ssePath, type RawSseEvent } from "../helpers/sse.js";
import { hasChromium } from "../helpers/system.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";
const textOf = (event: RawSseEvent) => (JSON.parse(event.data) as { message?: { text?: string } }).message?.text;

/**
 * `--sse-compression on` (docs/protocol.md "Compression"): a client whose
 * Accept-Encoding takes gzip gets a gzip body, flushed after every batch, so
 * each event can be decoded before the next one exists; every other client
 * gets the body as is. Every kind of block (retry, events, keep-alives, end,
 * errors, the shutdown goodbye) goes through the same gzip stream.
 */
describe("SSE gzip", () => {
  let server: TestServer;
  let token: string;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  beforeAll(async () => {
    server = await startTestServer({ config: { sseCompression: true, keepaliveMs: 200 }, extraServices: () => [counterService()] });
    token = await server.token("alice");
    chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
  });
  afterAll(() => server?.close());

  const send = (room: string, text: string) => chat.send({ room, text }, bearer(token));

  it("gzip-encodes for a client that accepts it; each event is decoded before the next is published", async () => {
    const room = "gzip-incremental";
    const response = await getRawSse(`${server.url}${ssePath(subscribe, { room })}`, { authorization: `Bearer ${token}`, "accept-encoding": "gzip" });
    try {
      expect(response.status).toBe(200);
      expect(response.headers["content-encoding"]).toBe("gzip");
      expect(response.headers.vary).toBe("Accept-Encoding");
      expect((await response.events.next()).value).toEqual({ event: "retry", data: "2000" });
      // Lock-step: the next message is published only after the previous one was read, inflated, off the wire.
      for (const text of ["one", "two", "three"]) {
        await send(room, text);
        const [event] = await nextEvents(response.events, 1);
        expect(textOf(event!)).toBe(text);
      }
    } finally {
      await response.events.return(undefined);
    }
  });

  it("sends keep-alives, the end event and a whole gzip trailer through the stream", async () => {
    const room = "gzip-keepalive";
    const response = await getRawSse(`${server.url}${ssePath(subscribe, { room })}`, { authorization: `Bearer ${token}`, "accept-encoding": "gzip" });
    try {
      expect(response.headers["content-encoding"]).toBe("gzip");
      let event: RawSseEvent | undefined;
      do event = (await response.events.next()).value as RawSseEvent;
      while (event.event !== "comment");
      expect(event).toEqual({ event: "comment", data: "keep-alive" });
    } finally {
      await response.events.return(undefined);
    }

    const counted = await getRawSse(`${server.url}${ssePath("rivulet.testing.v1.CounterService/Count", { to: 3 })}`, {
      authorization: `Bearer ${token}`,
      "accept-encoding": "gzip",
    });
    expect(counted.headers["content-encoding"]).toBe("gzip");
    expect((await nextEvents(counted.events, 5)).map((e) => e.event ?? e.data)).toEqual([
      '{"value":1,"cursor":"1"}',
      '{"value":2,"cursor":"2"}',
      '{"value":3,"cursor":"3"}',
      "end",
    ]);
    await counted.ended;
  });

  it("sends an error after the first event through the stream (the stream lifetime reached)", async () => {
    const short = await startTestServer({ config: { sseCompression: true, streamLifetimeMs: 1000 } });
    try {
      const shortToken = await short.token("alice");
      const response = await getRawSse(`${short.url}${ssePath(subscribe, { room: "gzip-lifetime" })}`, {
        authorization: `Bearer ${shortToken}`,
        "accept-encoding": "gzip",
      });
      expect(response.headers["content-encoding"]).toBe("gzip");
      expect(await nextEvents(response.events, 1)).toEqual([
        { event: "error", data: '{"code":"unavailable","message":"stream lifetime reached: resume from your last cursor"}' },
      ]);
      await response.ended;
    } finally {
      await short.close();
    }
  });

  it("says goodbye through the stream on shutdown: retry, unavailable, then a whole gzip trailer", async () => {
    const closing = await startTestServer({ config: { sseCompression: true } });
    const closingToken = await closing.token("alice");
    const response = await getRawSse(`${closing.url}${ssePath(subscribe, { room: "gzip-shutdown" })}`, {
      authorization: `Bearer ${closingToken}`,
      "accept-encoding": "gzip",
    });
    expect(response.headers["content-encoding"]).toBe("gzip");
    expect((await response.events.next()).value).toEqual({ event: "retry", data: "2000" });
    const closed = closing.close();
    const [retry, error] = [(await response.events.next()).value as RawSseEvent, (await response.events.next()).value as RawSseEvent];
    expect(retry.event).toBe("retry");
    expect(Number(retry.data)).toBeLessThan(1000);
    expect(error).toEqual({ event: "error", data: '{"code":"unavailable","message":"server is shutting down; reconnect"}' });
    await response.ended;
    await closed;
  });

  it.each([
    ["no Accept-Encoding", {}],
    ["gzip refused", { "accept-encoding": "gzip;q=0, br" }],
    ["identity only", { "accept-encoding": "identity" }],
  ])("sends the body as is when gzip is not accepted (%s)", async (_why, headers: Record<string, string>) => {
    const room = "gzip-identity";
    const response = await getRawSse(`${server.url}${ssePath(subscribe, { room })}`, { authorization: `Bearer ${token}`, ...headers });
    try {
      expect(response.headers["content-encoding"]).toBeUndefined();
      expect(response.headers.vary).toBe("Accept-Encoding");
      expect((await response.events.next()).value).toEqual({ event: "retry", data: "2000" });
      await send(room, "plain");
      expect(textOf((await nextEvents(response.events, 1))[0]!)).toBe("plain");
    } finally {
      await response.events.return(undefined);
    }
  });

  it("works with fetch and the eventsource package, which send Accept-Encoding and inflate", async () => {
    const room = "gzip-clients";
    const fetched = await fetch(`${server.url}${ssePath(subscribe, { room })}`, { headers: { authorization: `Bearer ${token}` } });
    expect(fetched.headers.get("content-encoding")).toBe("gzip");
    const fetchedEvents = readSse(fetched);

    const encodings: Array<string | null> = [];
    const received: string[] = [];
    const source = new EventSource(`${server.url}${ssePath(subscribe, { room })}`, {
      fetch: async (input, init) => {
        const response = await fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } });
        encodings.push(response.headers.get("content-encoding"));
        return response;
      },
    });
    try {
      const opened = new Promise((resolve) => source.addEventListener("open", resolve, { once: true }));
      const messages = new Promise<void>((resolve) =>
        source.addEventListener("message", (event) => {
          received.push((JSON.parse(event.data as string) as { message: { text: string } }).message.text);
          if (received.length === 2) resolve();
        }),
      );
      await opened;
      await send(room, "first");
      await send(room, "second");
      await messages;
      expect(received).toEqual(["first", "second"]);
      expect(encodings).toEqual(["gzip"]);
      expect((await nextEvents(fetchedEvents, 2)).map(textOf)).toEqual(["first", "second"]);
    } finally {
      source.close();
      await fetchedEvents.return(undefined);
    }
  });

  it("is off by default: gzip accepted, the body goes as is, with no Vary", async () => {
    const plain = await startTestServer();
    try {
      const plainToken = await plain.token("alice");
      const response = await getRawSse(`${plain.url}${ssePath("rivulet.chat.v1.ChatService/Subscribe", { room: "gzip-off" })}`, {
        authorization: `Bearer ${plainToken}`,
        "accept-encoding": "gzip",
      });
      expect(response.headers["content-encoding"]).toBeUndefined();
      expect(response.headers.vary).toBeUndefined();
      expect((await response.events.next()).value).toEqual({ event: "retry", data: "2000" });
      await response.events.return(undefined);
    } finally {
      await plain.close();
    }
  });
});

describe.runIf(hasChromium())("SSE gzip in headless Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer({ config: { sseCompression: true } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("the native EventSource asks for gzip, gets it, and receives every message as it is sent", async () => {
    const token = await server.token("alice");
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const room = "gzip-browser";
    const page = await openPageAt(browser, server.url);
    try {
      const streamed = page.waitForResponse((r) => r.url().includes("/sse/"));
      await openEventSource(page, ssePath(subscribe, { room }, { access_token: token }));
      const response = await streamed;
      // The server answers gzip only to an Accept-Encoding that takes it: the browser asked.
      expect(response.headers()["content-encoding"]).toBe("gzip");
      for (const [n, text] of ["b1", "b2", "b3"].entries()) {
        await chat.send({ room, text }, bearer(token));
        await page.waitForFunction((count) => (window as unknown as { log: unknown[] }).log.length >= count, n + 1);
      }
      const texts = (await eventSourceLog(page)).map((e) => (JSON.parse(e.data ?? "{}") as { message?: { text?: string } }).message?.text);
      expect(texts).toEqual(["b1", "b2", "b3"]);
    } finally {
      await page.close();
    }
  });
});
