// The demo app's chat panel at GET /, as people use it: headless Chromium
// pages in separate browser contexts (two users, no shared cookie), on each
// transport: messages, presence and typing between two users; a transport
// switched mid-stream and a connection cut mid-stream (a TCP proxy in front
// of the server drops every connection and holds new ones, as a restart
// does) lose and duplicate nothing; it fits a 390 px wide screen; and the
// pages log no console errors.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { launchChromium } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { demoTransports, openDemo, waitForChatLine, type DemoTab, type DemoTransport } from "../helpers/demo-page.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

// Each test drives two or more pages through joins and reconnects: longer than the default 30 s under load.
describe.skipIf(!hasChromium())("the demo's chat panel in headless Chromium", { timeout: 90_000 }, () => {
  let server: TestServer;
  let proxy: TcpProxy;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    // Development mode: each page mints its own tokens at /dev/token.
    server = await startTestServer({ config: { authSecret: undefined } });
    proxy = await startTcpProxy(server.port);
    browser = await launchChromium();
  }, 60_000);
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.close();
  });

  /** The demo joined to `room` as `user` on `transport` in a new browser context (another user), once it shows its user present. */
  async function join(user: string, room: string, transport: DemoTransport, width = 1024): Promise<DemoTab> {
    const tab = await openDemo(browser, proxy.url, { user, room, transport }, { context: { viewport: { width, height: 800 } } });
    contexts.push(tab.page.context());
    await tab.page.waitForSelector(`#presence li:text-is("${user}")`);
    return tab;
  }

  const lines = (page: Page) => page.locator("#messages li").allTextContents();
  const presence = (page: Page) => page.locator("#presence li").allTextContents();

  /** Sends from outside the browser, straight to the server (not through the proxy). */
  async function publisher(user: string) {
    const token = await (await fetch(`${server.url}/dev/token?user=${user}`)).text();
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    return (room: string, text: string) => chat.send({ room, text }, bearer(token));
  }

  /** Waits until `page` shows at least `count` messages, then returns them all. */
  async function waitForLines(page: Page, count: number): Promise<string[]> {
    await page.waitForFunction((n) => document.querySelectorAll("#messages li").length >= n, count);
    return lines(page);
  }

  describe.each(demoTransports)("on %s", (kind) => {
    it("two users see each other's messages, presence and typing", async () => {
      const room = `two-users-${kind}`;
      const alice = await join("alice", room, kind);
      const bob = await join("bob", room, kind);
      await alice.page.waitForSelector('#presence li:text-is("bob")');
      expect(await presence(alice.page)).toEqual(["alice", "bob"]);
      expect(await presence(bob.page)).toEqual(["alice", "bob"]);

      // Bob types: alice sees it (a typing signal), bob does not see himself.
      await bob.page.fill("#text", "hi al");
      await alice.page.waitForSelector("#typing:text-is('bob is typing…')");
      expect(await bob.page.textContent("#typing")).toBe("");
      await bob.page.fill("#text", "hi alice");
      await bob.page.click("#send");
      await waitForChatLine(alice.page, "bob: hi alice");
      // His message ends his typing.
      expect(await alice.page.textContent("#typing")).toBe("");
      await waitForChatLine(bob.page, "bob: hi alice");
      expect(await bob.page.inputValue("#text")).toBe("");

      await alice.page.fill("#text", "hello bob");
      await alice.page.press("#text", "Enter");
      await waitForChatLine(bob.page, "alice: hello bob");
      expect(await lines(bob.page)).toEqual(["bob: hi alice", "alice: hello bob"]);
      expect(await waitForLines(alice.page, 2)).toEqual(["bob: hi alice", "alice: hello bob"]);
      // The last cursor shown is the last message's.
      const last = await alice.page.locator("#messages li").last().getAttribute("data-cursor");
      expect(await alice.page.textContent("#cursor")).toBe(last);

      // Bob leaves (closes his tab): alice sees him go.
      await bob.page.close();
      await alice.page.waitForFunction(() => document.querySelectorAll("#presence li").length === 1);
      expect(await presence(alice.page)).toEqual(["alice"]);
      expect(alice.errors).toEqual([]);
      expect(bob.errors).toEqual([]);
    });

    it("pages back through history with the older button, each message once", async () => {
      const room = `paging-${kind}`;
      const send = await publisher("carol");
      for (let i = 1; i <= 45; i++) await send(room, `m${i}`);
      const alice = await join("alice", room, kind);
      // A fresh view opens with the last 20; each click prepends the page before.
      const all = Array.from({ length: 45 }, (_, i) => `carol: m${i + 1}`);
      expect(await waitForLines(alice.page, 20)).toEqual(all.slice(25));
      await alice.page.click("#older");
      expect(await waitForLines(alice.page, 40)).toEqual(all.slice(5));
      await alice.page.click("#older");
      expect(await waitForLines(alice.page, 45)).toEqual(all);
      await alice.page.waitForSelector("#older:disabled:text-is('No older messages')");
      expect(alice.errors).toEqual([]);
    });

    it("resumes after every connection is cut and held mid-stream, losing and duplicating nothing", async () => {
      const room = `cut-${kind}`;
      const send = await publisher("carol");
      const alice = await join("alice", room, kind);
      for (let i = 1; i <= 5; i++) await send(room, `m${i}`);
      await waitForLines(alice.page, 5);

      // The server goes away: connections drop and new ones hang until it is back.
      proxy.drop({ hold: true });
      await alice.page.waitForSelector("#state[data-state='reconnecting']");
      for (let i = 6; i <= 15; i++) await send(room, `m${i}`);
      proxy.release();
      await alice.page.waitForSelector("#state[data-state='connected']");
      for (let i = 16; i <= 20; i++) await send(room, `m${i}`);
      // A last message after the rest: once it shows, any duplicate would have shown before it.
      await send(room, "last");
      await waitForChatLine(alice.page, "carol: last");

      expect(await lines(alice.page)).toEqual([...Array.from({ length: 20 }, (_, i) => `carol: m${i + 1}`), "carol: last"]);
      // The page itself logged nothing; the browser's own lines about refused connections are not the page's.
      expect(alice.errors.filter((line) => !/net::ERR_|WebSocket connection to/.test(line))).toEqual([]);
    });
  });

  it("switches transport mid-stream without a gap or a duplicate", async () => {
    const room = "switching";
    const send = await publisher("carol");
    const alice = await join("alice", room, "websocket");
    let sent = 0;
    const sendSome = async (count: number) => {
      for (let i = 0; i < count; i++) await send(room, `m${++sent}`);
    };
    await sendSome(5);
    // Switch while messages keep coming: websocket → sse → connect → websocket.
    for (const kind of ["sse", "connect", "websocket"] as const) {
      const publishing = sendSome(10);
      await alice.page.selectOption("#transport", kind);
      await publishing;
      await alice.page.waitForSelector("#state[data-state='connected']");
      await sendSome(2);
    }
    await send(room, "last");
    await waitForChatLine(alice.page, "carol: last");
    expect(await lines(alice.page)).toEqual([...Array.from({ length: sent }, (_, i) => `carol: m${i + 1}`), "carol: last"]);
    expect(alice.errors).toEqual([]);
  });

  it("on the WebSocket, counts down to the next attempt while the server is down, queues what is sent meanwhile and sends it once back", async () => {
    const room = "outbox";
    const alice = await join("alice", room, "websocket");
    const send = await publisher("carol");
    await send(room, "before");
    await waitForChatLine(alice.page, "carol: before");

    // Down: every connection closed and new ones refused, so the client waits between attempts.
    proxy.drop({ refuse: true });
    await alice.page.waitForFunction(() => /^reconnecting in \d+\.\d s/.test(document.querySelector("#state")?.textContent ?? ""));
    for (const text of ["one", "two", "three"]) {
      await alice.page.fill("#text", text);
      await alice.page.click("#send");
      // The field clears at once: the message waits in the outbox.
      expect(await alice.page.inputValue("#text")).toBe("");
    }
    await alice.page.waitForSelector("#state[data-queued='3']");
    expect(await alice.page.textContent("#state")).toMatch(/^reconnecting.*, 3 writes queued$/);

    proxy.release();
    await waitForChatLine(alice.page, "alice: three");
    await alice.page.waitForSelector("#state[data-state='connected'][data-queued='0']");
    expect(await alice.page.textContent("#state")).toBe("connected");
    expect(await lines(alice.page)).toEqual(["carol: before", "alice: one", "alice: two", "alice: three"]);
    expect(await alice.page.textContent("#status")).toBe("");
    // Only the browser's own lines about the refused connections.
    expect(alice.errors.filter((line) => !/net::ERR_|WebSocket connection to/.test(line))).toEqual([]);
  });

  it("fits a 390 px wide screen without horizontal scrolling", async () => {
    const alice = await join("alice", "narrow", "websocket", 390);
    const send = await publisher("carol");
    await send("narrow", `a long line without spaces: ${"x".repeat(300)}`);
    await waitForLines(alice.page, 1);
    expect(await alice.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    if (process.env.RIVULET_SCREENSHOT) await alice.page.screenshot({ path: process.env.RIVULET_SCREENSHOT });
    expect(alice.errors).toEqual([]);
  });
});
