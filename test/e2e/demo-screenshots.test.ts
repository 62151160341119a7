// Takes the screenshots of the demo app in docs/images/ (README shows one).
// Skipped unless RIVULET_SCREENSHOTS=1, so `npm test` never rewrites tracked
// files:  RIVULET_SCREENSHOTS=1 npx vitest run test/e2e/demo-screenshots.test.ts
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { launchChromium } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";

const images = (name: string) => fileURLToPath(new URL(`../../docs/images/${name}`, import.meta.url));

describe.skipIf(process.env.RIVULET_SCREENSHOTS !== "1" || !hasChromium())("screenshots of the demo app", { timeout: 90_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  beforeAll(async () => {
    server = await startTestServer({ config: { authSecret: undefined } });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function join(user: string, width: number, kind = "websocket"): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width, height: 720 }, deviceScaleFactor: 1 })).newPage();
    await page.goto(`${server.url}/`);
    await page.fill("#user", user);
    await page.fill("#room", "team-42:general");
    await page.selectOption("#transport", kind);
    await page.click("#join button");
    await page.waitForSelector("#state[data-state='connected']");
    return page;
  }

  it("the chat panel, wide and 390 px narrow", async () => {
    const token = await (await fetch(`${server.url}/dev/token?user=carol`)).text();
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    for (const text of ["Morning! The deploy is green.", "Nice: the dashboard streams over SSE now.", "Next: job progress in the demo."]) {
      await chat.send({ room: "team-42:general", text }, bearer(token));
    }
    const alice = await join("alice", 1024);
    const bob = await join("bob", 390, "sse");
    await alice.fill("#text", "Shipping it after lunch");
    await alice.click("#send");
    await bob.fill("#text", "sounds g");
    await alice.waitForSelector("#typing:text-is('bob is typing…')");
    await alice.waitForFunction(() => document.querySelectorAll("#presence li").length === 2);
    await bob.waitForFunction(() => document.querySelectorAll("#messages li").length === 4);
    await alice.screenshot({ path: images("demo-chat.png"), fullPage: true });
    await bob.screenshot({ path: images("demo-chat-narrow.png"), fullPage: true });
  });
});
