import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { createSseClient } from "../../src/client/sse.js";
import { eventSourceLog, launchChromium, openEventSource, openPageAt, type EventSourceLogEntry as Logged } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { ssePath } from "../helpers/sse.js";
import { hasChromium } from "../helpers/system.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/** What the esbuild bundle of the client helper puts on `window.Rivulet`. */
interface BrowserBundle {
  readonly createSseClient: typeof createSseClient;
  readonly ChatService: typeof ChatService;
}

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";
const textOf = (entry: Logged) => (JSON.parse(entry.data ?? "{}") as { message?: { text?: string } }).message?.text;

describe.runIf(hasChromium())("SSE in headless Chromium with the native EventSource", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let browser: Browser;
  let token: string;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  beforeAll(async () => {
    server = await startTestServer({ config: { sseRetryMs: 10 }, extraServices: () => [counterService()] });
    proxy = await startTcpProxy(server.port);
    browser = await launchChromium();
    token = await server.token("alice");
    chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
  });

  const openPage = (origin: string, body?: string) => openPageAt(browser, origin, body);
  const logOf = eventSourceLog;
  const waitForLog = (page: Page, count: number, type = "message") =>
    page.waitForFunction(([n, t]) => (window as unknown as { log: Logged[] }).log.filter((e) => e.type === t).length >= (n as number), [count, type] as const);

  it("resumes after the connection drops: the browser sends Last-Event-ID and gets exactly the missed messages", async () => {
    const room = "browser-resume";
    const send = async (...texts: string[]) => {
      for (const text of texts) await chat.send({ room, text }, bearer(token));
    };
    await send("m1", "m2");
    const page = await openPage(proxy.url);
    try {
      await openEventSource(page, ssePath(subscribe, { room, history: 2 }, { access_token: token }));
      await waitForLog(page, 2);
      const before = (await logOf(page)).filter((e) => e.type === "message");
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await send("m3", "m4", "m5");
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      await waitForLog(page, 5);
      await send("m6");
      await waitForLog(page, 6);
      const messages = (await logOf(page)).filter((e) => e.type === "message");
      expect(messages.map(textOf)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6"]);
      expect(proxy.requests.at(-1)).toMatch(new RegExp(`^last-event-id: ${before[1]!.lastEventId}\\r$`, "im"));
    } finally {
      await page.close();
    }
  });

  it("stops reconnecting when a finished stream answers 204", async () => {
    const page = await openPage(proxy.url);
    try {
      const requestsBefore = proxy.requests.length;
      await openEventSource(page, ssePath("rivulet.testing.v1.CounterService/Count", { to: 3 }, { access_token: token }));
      // After `end` the server closes; the browser reconnects with Last-Event-ID 3, gets 204 and gives up (CLOSED).
      await page.waitForFunction(() => (window as unknown as { source: EventSource }).source.readyState === 2);
      const log = await logOf(page);
      // readyState: 1 open, 0 reconnecting (the first error is the browser noticing the close), 2 closed for good.
      expect(log.map((e) => `${e.type} ${e.lastEventId ?? ""} ${e.readyState}`)).toEqual([
        "message 1 1",
        "message 2 1",
        "message 3 1",
        "end 3 1",
        "error  0",
        "error  2",
      ]);
      const requests = proxy.requests.slice(requestsBefore).filter((r) => r.includes("CounterService/Count"));
      expect(requests).toHaveLength(2);
      expect(requests[1]).toMatch(/^last-event-id: 3\r$/im);
    } finally {
      await page.close();
    }
  });

  it("receives an error event with the Connect error JSON: the server shutting down says unavailable", async () => {
    const other = await startTestServer({ config: { sseRetryMs: 10 } });
    const page = await openPage(other.url);
    try {
      const otherToken = await other.token("alice");
      const otherChat = clientFor(ChatService, transportFor(other.url, "connect", "1.1"));
      await otherChat.send({ room: "closing", text: "hello" }, bearer(otherToken));
      await openEventSource(page, ssePath(subscribe, { room: "closing", history: 1 }, { access_token: otherToken }));
      await waitForLog(page, 1);
      await other.close();
      await page.waitForFunction(() => (window as unknown as { log: Logged[] }).log.some((e) => e.type === "error" && e.data !== null));
      const errors = (await logOf(page)).filter((e) => e.type === "error" && e.data !== null);
      // Usually one; a browser quick enough to ask again before the connection closes is told the same again.
      expect(errors.length).toBeGreaterThanOrEqual(1);
      for (const error of errors) expect(JSON.parse(error.data!)).toEqual({ code: "unavailable", message: "server is shutting down; reconnect" });
    } finally {
      await page.close();
      await other.close();
    }
  });

  it("runs the client helper (src/client/sse.ts, bundled by esbuild) in the browser: typed messages, resume after a drop", async () => {
    const bundle = await build({
      stdin: {
        contents: 'export { createSseClient } from "./src/client/sse.ts"; export { ChatService } from "./gen/rivulet/chat/v1/chat_pb.ts";',
        resolveDir: fileURLToPath(new URL("../..", import.meta.url)),
        loader: "ts",
      },
      bundle: true,
      format: "iife",
      globalName: "Rivulet",
      platform: "browser",
      write: false,
    });
    const page = await openPage(proxy.url, `<!doctype html><meta charset="utf-8"><script>${bundle.outputFiles[0]!.text}</script>`);
    const room = "browser-client";
    const send = async (...texts: string[]) => {
      for (const text of texts) await chat.send({ room, text }, bearer(token));
    };
    try {
      await send("m1", "m2");
      await page.evaluate(
        ([room, token]) => {
          const rivulet = (window as unknown as { Rivulet: BrowserBundle }).Rivulet;
          const log: string[] = [];
          (window as unknown as { log: string[] }).log = log;
          const client = rivulet.createSseClient({ baseUrl: location.origin, token, backoff: { initialMs: 20 } });
          void (async () => {
            for await (const response of client.subscribe(rivulet.ChatService.method.subscribe, { room, history: 2 })) {
              log.push(response.event.case === "message" ? response.event.value.text : "?");
            }
          })();
        },
        [room, token] as const,
      );
      const count = (n: number) => page.waitForFunction((n) => (window as unknown as { log: string[] }).log.length >= n, n);
      await count(2);
      const connections = proxy.connections();
      proxy.drop({ hold: true });
      await send("m3", "m4");
      await proxy.waitForConnections(connections + 1);
      proxy.release();
      await count(4);
      await send("m5");
      await count(5);
      expect(await page.evaluate(() => (window as unknown as { log: string[] }).log)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    } finally {
      await page.close();
    }
  });
});
