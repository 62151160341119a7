// The durable outbox in headless Chromium (Debian's chromium, playwright-core):
// a page on a real server through a TCP proxy that is cut, sends three
// messages while offline, is reloaded, and the reloaded page replays them
// from IndexedDB once the proxy lets connections through: exactly three
// messages stored, in order. Two tabs sharing one outbox replay each entry
// once. The Node side (memory store) is test/client/outbox.test.ts.
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { launchChromium, serveBundledPage, type BundledPage } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import type { OutboxPageEvent } from "./browser/outbox-page.js";

const available = hasChromium();

/** Events one page reported (across its reloads), and a way to wait for them. */
function createInbox() {
  const events: OutboxPageEvent[] = [];
  const waiters = new Set<() => void>();
  return {
    events,
    push(event: OutboxPageEvent) {
      events.push(event);
      for (const waiter of [...waiters]) waiter();
    },
    /** Resolves once `count` events of `kind` have come in total. */
    until(kind: OutboxPageEvent["kind"], count: number): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (events.filter((e) => e.kind === kind).length < count) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
    of<K extends OutboxPageEvent["kind"]>(kind: K): Extract<OutboxPageEvent, { kind: K }>[] {
      return events.filter((e): e is Extract<OutboxPageEvent, { kind: K }> => e.kind === kind);
    },
  };
}

describe.skipIf(!available)("the IndexedDB outbox in headless Chromium", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let browser: Browser;
  let context: BrowserContext | undefined;
  let pageServer: BundledPage;
  let pageOrigin: string;
  let token: string;

  beforeAll(async () => {
    // The page's own origin on loopback: a secure context (IndexedDB, Web Locks), allowed by the server.
    pageServer = await serveBundledPage(fileURLToPath(new URL("browser/outbox-page.ts", import.meta.url)));
    pageOrigin = pageServer.origin;
    server = await startTestServer({ config: { allowedOrigins: [pageOrigin] } });
    proxy = await startTcpProxy(server.port);
    token = await server.token("alice");
    browser = await launchChromium();
  }, 60_000);
  afterEach(async () => {
    await context?.close();
    context = undefined;
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
    await pageServer?.close();
  });

  /** A page of the test origin in `ctx`, reporting to a fresh inbox, on the given outbox. */
  async function openPage(ctx: BrowserContext, outbox: string): Promise<{ page: Page; inbox: ReturnType<typeof createInbox> }> {
    const page = await ctx.newPage();
    const inbox = createInbox();
    await page.exposeFunction("report", (event: OutboxPageEvent) => inbox.push(event));
    const query = new URLSearchParams({ ws: `${proxy.url.replace(/^http/, "ws")}/ws`, token, outbox });
    await page.goto(`${pageOrigin}/?${query}`);
    await inbox.until("loaded", 1);
    return { page, inbox };
  }

  async function history(room: string): Promise<string[]> {
    const reader = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const { messages } = await reader.history({ room }, bearer(token));
    return messages.map((m) => m.text);
  }

  it("server down, three sends, reload, server up: exactly three messages stored, in order", async () => {
    const room = "outbox-browser-reload";
    proxy.drop({ hold: true });
    context = await browser.newContext();
    const { page, inbox } = await openPage(context, "reload");
    expect(inbox.of("loaded")).toEqual([{ kind: "loaded", locks: true, queued: 0 }]);

    for (const text of ["offline 1", "offline 2", "offline 3"]) await page.evaluate(([r, t]) => window.outboxPage.send(r!, t!), [room, text]);
    await inbox.until("put", 3);
    expect(await page.evaluate(() => window.outboxPage.queued())).toBe(3);

    // Reloaded while still offline: the promises of the first page are gone, the entries are not.
    await page.reload();
    await inbox.until("loaded", 2);
    expect(inbox.of("loaded")[1]).toEqual({ kind: "loaded", locks: true, queued: 3 });
    expect(inbox.of("delete")).toEqual([]);

    proxy.release();
    await inbox.until("delete", 3);
    expect(await page.evaluate(() => window.outboxPage.queued())).toBe(0);
    expect(await history(room)).toEqual(["offline 1", "offline 2", "offline 3"]);
    // Nobody awaited them after the reload, and none failed.
    expect(inbox.of("sent")).toEqual([]);
    expect(inbox.of("error")).toEqual([]);
    expect(inbox.of("outbox-error")).toEqual([]);

    // Once drained, a send goes straight out and the store stays untouched. The drain holds the
    // outbox's Web Lock until it has listed the store empty: taking the lock waits for its end
    // (a send while it is still finishing is queued behind it, in order, and would touch the store).
    await page.evaluate(() => navigator.locks.request("rivulet-outbox:reload", () => undefined));
    await page.evaluate((r) => window.outboxPage.send(r, "online"), room);
    await inbox.until("sent", 1);
    expect(inbox.of("put")).toHaveLength(3);
    expect(await history(room)).toEqual(["offline 1", "offline 2", "offline 3", "online"]);
  });

  it("two tabs on one outbox: every entry replayed once, each tab's sends answered in that tab", async () => {
    const room = "outbox-browser-tabs";
    proxy.drop({ hold: true });
    context = await browser.newContext();
    const a = await openPage(context, "tabs");
    const b = await openPage(context, "tabs");
    await a.page.evaluate((r) => window.outboxPage.send(r, "a1"), room);
    await a.inbox.until("put", 1);
    await b.page.evaluate((r) => window.outboxPage.send(r, "b1"), room);
    await b.inbox.until("put", 1);
    await a.page.evaluate((r) => window.outboxPage.send(r, "a2"), room);
    await a.inbox.until("put", 2);
    await b.page.evaluate((r) => window.outboxPage.send(r, "b2"), room);
    await b.inbox.until("put", 2);

    proxy.release();
    await a.inbox.until("sent", 2);
    await b.inbox.until("sent", 2);
    expect(await history(room)).toEqual(["a1", "b1", "a2", "b2"]);
    expect(a.inbox.of("sent").map((e) => e.text)).toEqual(["a1", "a2"]);
    expect(b.inbox.of("sent").map((e) => e.text)).toEqual(["b1", "b2"]);
    // Four deletes in all, whichever tab sent each entry.
    expect(a.inbox.of("delete").length + b.inbox.of("delete").length).toBe(4);
    expect(await a.page.evaluate(() => window.outboxPage.queued())).toBe(0);
    for (const { inbox } of [a, b]) expect([...inbox.of("error"), ...inbox.of("outbox-error")]).toEqual([]);
  });
});
