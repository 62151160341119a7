// The demo app recovers by itself from a real server restart: the server
// (Redis broker, so the room's log outlives the process) is closed and a new
// one started on the same port, and pages on every transport carry on from
// their last cursor with every chat message and notification once, in
// order, and no gap.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import type { Config } from "../../src/config.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "../broker/test-redis.js";
import { launchChromium } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { demoTransports, openDemo, waitForChatLine } from "../helpers/demo-page.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";

describe.skipIf(!hasChromium() || !redisAvailable())("the demo app across a server restart", { timeout: 90_000 }, () => {
  const prefix = uniquePrefix();
  let server: TestServer;
  let browser: Browser;
  // Development mode (tokens from /dev/token, signed with the secret kept on disk) on a Redis broker.
  const config = (port: number): Partial<Config> => ({ authSecret: undefined, broker: redisUrl, redisPrefix: prefix, port });

  beforeAll(async () => {
    server = await startTestServer({ config: config(0) });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await deleteKeys(prefix);
  });

  const send = async (text: string) => {
    const token = await (await fetch(`${server.url}/dev/token?user=carol`)).text();
    await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).send({ room: "restart", text }, bearer(token));
  };

  /** Notifies each reader (a backend with the publisher role, straight to the server). */
  const notifyReaders = async (title: string) => {
    const token = await (await fetch(`${server.url}/dev/token?user=backend&roles=publisher`)).text();
    const notify = clientFor(NotificationService, transportFor(server.url, "connect", "1.1"));
    for (const transport of demoTransports) await notify.publish({ userId: `reader-${transport}`, kind: "restart", title }, bearer(token));
  };
  /** The titles in a page's notifications panel, oldest first (the panel shows the newest first). */
  const titles = async (page: Page) => (await page.locator("#notification-list li strong").allTextContents()).reverse();

  it("resumes every transport's stream on the new process from its last cursor", async () => {
    const tabs = await Promise.all(
      demoTransports.map((transport) => openDemo(browser, server.url, { user: `reader-${transport}`, room: "restart", transport }, { timeoutMs: 15_000 })),
    );
    for (let i = 1; i <= 5; i++) await send(`m${i}`);
    await notifyReaders("before");
    for (const { page } of tabs) await waitForChatLine(page, "carol: m5");
    for (const { page } of tabs) await page.waitForSelector('#notification-list li strong:text-is("before")');

    const port = server.port;
    await server.close();
    for (const { page } of tabs) await page.waitForSelector("#state:not([data-state='connected'])");
    server = await startTestServer({ config: config(port) });
    for (let i = 6; i <= 10; i++) await send(`m${i}`);
    await notifyReaders("after");
    await send("last");

    const expected = [...Array.from({ length: 10 }, (_, i) => `carol: m${i + 1}`), "carol: last"];
    for (const { page, errors } of tabs) {
      await waitForChatLine(page, "carol: last");
      expect(await page.locator("#messages li").allTextContents()).toEqual(expected);
      await page.waitForSelector('#notification-list li strong:text-is("after")');
      expect(await titles(page)).toEqual(["before", "after"]);
      await page.waitForSelector("#state[data-state='connected']");
      expect(await page.textContent("#status")).toBe("");
      // Only the browser's own lines about refused connections while the server was down.
      expect(errors.filter((line) => !/net::ERR_|WebSocket connection to/.test(line))).toEqual([]);
    }
  });
});
