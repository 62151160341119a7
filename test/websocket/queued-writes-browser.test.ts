// The WebSocket transport's queuedWrites in headless Chromium, with the
// IndexedDB outbox: a page on a real server through a TCP proxy that is cut
// counts the sends it stores; reloaded, the new page counts the entries the
// last one left in IndexedDB before anything else happens; once the proxy
// lets connections through, the count goes down one answer at a time to 0.
// The Node side (memory queue and memory outbox) is test/client/connection-state.test.ts.
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { launchChromium, serveBundledPage, type BundledPage } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import type { QueuedWritesPageEvent } from "./browser/queued-writes-page.js";

const available = hasChromium();

describe.skipIf(!available)("queuedWrites with the IndexedDB outbox in headless Chromium", () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let browser: Browser;
  let pageServer: BundledPage;
  let pageOrigin: string;
  let token: string;

  beforeAll(async () => {
    pageServer = await serveBundledPage(fileURLToPath(new URL("browser/queued-writes-page.ts", import.meta.url)));
    pageOrigin = pageServer.origin;
    server = await startTestServer({ config: { allowedOrigins: [pageOrigin] } });
    proxy = await startTcpProxy(server.port);
    token = await server.token("alice");
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
    await pageServer?.close();
  });

  /** Events the page reported (across its reloads), and a way to wait for one. */
  function createInbox() {
    const events: QueuedWritesPageEvent[] = [];
    const waiters = new Set<() => void>();
    return {
      events,
      push(event: QueuedWritesPageEvent) {
        events.push(event);
        for (const waiter of [...waiters]) waiter();
      },
      /** Resolves once an event at or after `from` satisfies `test`; returns its index. */
      until(test: (event: QueuedWritesPageEvent) => boolean, from = 0): Promise<number> {
        return new Promise((resolve) => {
          const check = () => {
            const index = events.findIndex((e, i) => i >= from && test(e));
            if (index < 0) return;
            waiters.delete(check);
            resolve(index);
          };
          waiters.add(check);
          check();
        });
      },
    };
  }

  const queueIs = (count: number) => (e: QueuedWritesPageEvent) => e.kind === "queue" && e.count === count;

  async function openPage(): Promise<{ page: Page; inbox: ReturnType<typeof createInbox> }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const inbox = createInbox();
    await page.exposeFunction("report", (event: QueuedWritesPageEvent) => inbox.push(event));
    const query = new URLSearchParams({ ws: `${proxy.url.replace(/^http/, "ws")}/ws`, token, outbox: "queued-writes" });
    await page.goto(`${pageOrigin}/?${query}`);
    return { page, inbox };
  }

  it("offline, three sends counted; reloaded, the three left in IndexedDB counted first; online, down to 0", async () => {
    const room = "queued-writes-browser";
    proxy.drop({ hold: true });
    const { page, inbox } = await openPage();
    try {
      for (const text of ["q1", "q2", "q3"]) await page.evaluate(([r, t]) => window.queuedWritesPage.send(r!, t!), [room, text]);
      await inbox.until(queueIs(3));
      // Counted as IndexedDB lists them: increasing, each with the transport's own number.
      const counts = inbox.events.filter((e) => e.kind === "queue");
      expect(counts.every((e) => e.count === e.queuedWrites)).toBe(true);
      expect(counts.map((e) => e.count)).toEqual([...new Set(counts.map((e) => e.count))].sort());

      // Reloaded while still offline: the new page's first word is the three it found.
      const reloadedAt = inbox.events.length;
      await page.reload();
      const found = await inbox.until((e) => e.kind === "queue", reloadedAt);
      expect(inbox.events[found]).toEqual({ kind: "queue", count: 3, queuedWrites: 3 });

      proxy.release();
      await inbox.until(queueIs(0), found);
      expect(inbox.events.slice(found)).toEqual([3, 2, 1, 0].map((count) => ({ kind: "queue", count, queuedWrites: count })));
      const { messages } = await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).history({ room }, bearer(token));
      expect(messages.map((m) => m.text)).toEqual(["q1", "q2", "q3"]);
    } finally {
      await page.context().close();
    }
  });
});
