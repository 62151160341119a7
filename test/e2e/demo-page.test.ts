// The demo page at GET /, as a person uses it: two headless Chromium pages join
// a room (cookie from /dev/token, native EventSource on the SSE bridge), one
// sends, both see it; a message sent with curl-style Connect JSON shows too.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../helpers/browser.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";

describe.skipIf(!hasChromium())("the demo page in headless Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    // Development mode: the page mints its own cookie at /dev/token.
    server = await startTestServer({ config: { authSecret: undefined } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A fresh browser context (its own cookies) with the page joined to the room as `user`. */
  async function join(user: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    // localhost: browsers accept Secure cookies over plain HTTP there.
    await page.goto(`http://localhost:${server.port}/`);
    await page.fill("#user", user);
    await page.fill("#room", "demo");
    await page.click("#join button");
    await page.waitForSelector("#status:has-text('in #demo')");
    return page;
  }

  const lines = (page: Page) => page.locator("#log li").allTextContents();

  it("joins a room, sends, and shows messages from every sender live", async () => {
    const alice = await join("alice");
    const bob = await join("bob");
    await alice.fill("#text", "hello from alice");
    await alice.click("#send");
    await bob.waitForSelector("#log li:has-text('alice: hello from alice')");
    await alice.waitForSelector("#log li:has-text('alice: hello from alice')");

    const token = await (await fetch(`${server.url}/dev/token?user=carol`)).text();
    await fetch(`${server.url}/rivulet.chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ room: "demo", text: "and carol with curl" }),
    });
    await bob.waitForSelector("#log li:has-text('carol: and carol with curl')");
    expect(await lines(bob)).toEqual(["alice: hello from alice", "carol: and carol with curl"]);

    // A late joiner gets the history first.
    const dave = await join("dave");
    await dave.waitForSelector("#log li:has-text('carol: and carol with curl')");
    expect(await lines(dave)).toEqual(["alice: hello from alice", "carol: and carol with curl"]);
    if (process.env.RIVULET_SCREENSHOT) await dave.screenshot({ path: process.env.RIVULET_SCREENSHOT });
  });
});
