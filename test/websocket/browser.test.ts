// Headless Chromium (Debian's chromium, driven by playwright-core) runs the
// typed client from a page bundled with esbuild: it subscribes and sends over
// the browser's own WebSocket, and resumes after the server drops its socket.
import { subscribe as subscribeChannel, unsubscribe as unsubscribeChannel } from "node:diagnostics_channel";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { websocketOpenChannel } from "../../src/bridge/websocket/bridge.js";
import { launchChromium, serveBundledPage, type BundledPage } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";
import type { PageEvent } from "./browser/typed-client-page.js";

const available = hasChromium();

/** Events the page reported, and a way to wait for the next one of a kind. */
function createInbox() {
  const events: PageEvent[] = [];
  const waiters = new Set<() => void>();
  return {
    events,
    push(event: PageEvent) {
      events.push(event);
      for (const waiter of [...waiters]) waiter();
    },
    /** Resolves once `predicate` holds for the events so far. */
    until(predicate: (events: readonly PageEvent[]) => boolean): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (!predicate(events)) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

describe.skipIf(!available)("the typed WebSocket client in headless Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let pageServer: BundledPage;
  const inbox = createInbox();
  const serverSockets: WebSocket[] = [];
  const onOpen = (message: unknown) => serverSockets.push((message as { socket: WebSocket }).socket);

  beforeAll(async () => {
    pageServer = await serveBundledPage(fileURLToPath(new URL("browser/typed-client-page.ts", import.meta.url)));
    const pageOrigin = pageServer.origin;
    server = await startTestServer({ config: { allowedOrigins: [pageOrigin] } });
    subscribeChannel(websocketOpenChannel.name, onOpen);
    browser = await launchChromium();
    page = await browser.newPage();
    await page.exposeFunction("report", (event: PageEvent) => inbox.push(event));
    const query = new URLSearchParams({ ws: `${server.url.replace(/^http/, "ws")}/ws`, token: await server.token("alice") });
    await page.goto(`${pageOrigin}/?${query}`);
  }, 60_000);
  afterAll(async () => {
    unsubscribeChannel(websocketOpenChannel.name, onOpen);
    await browser?.close();
    await server?.close();
    await pageServer?.close();
  });

  const texts = () => inbox.events.flatMap((e) => (e.kind === "message" ? [e.text] : []));

  it("subscribes and sends, then resumes after a forced disconnect with every message once, in order", async () => {
    const room = "browser-room";
    const publisher = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const token = await server.token("bob");
    await publisher.send({ room, text: "m0" }, bearer(token));
    await page.evaluate((r) => window.rivulet.subscribe(r), room);
    await inbox.until(() => texts().length === 1);

    // A send from the browser, on the same socket, reaches its own subscription.
    const id = await page.evaluate((r) => window.rivulet.send(r, "from the browser"), room);
    expect(id).not.toBe("");
    await inbox.until(() => texts().length === 2);

    // The server drops the socket while messages keep coming.
    const publishing = (async () => {
      for (let i = 1; i <= 30; i++) {
        await publisher.send({ room, text: `m${i}` }, bearer(token));
        if (i === 5) serverSockets[0]!.terminate();
      }
    })();
    await publishing;
    await inbox.until(() => texts().length === 32);
    // And a send after the reconnect.
    await page.evaluate((r) => window.rivulet.send(r, "after the reconnect"), room);
    await inbox.until(() => texts().length === 33);

    expect(texts()).toEqual(["m0", "from the browser", ...Array.from({ length: 30 }, (_, i) => `m${i + 1}`), "after the reconnect"]);
    expect(new Set(inbox.events.flatMap((e) => (e.kind === "message" ? [e.cursor] : []))).size).toBe(33);
    expect(inbox.events.filter((e) => e.kind === "error")).toEqual([]);
    expect(serverSockets).toHaveLength(2);
    const states = inbox.events.flatMap((e) => (e.kind === "state" ? [e.state] : []));
    expect(states).toEqual(["connecting", "open", "waiting", "connecting", "open"]);
  });
});
