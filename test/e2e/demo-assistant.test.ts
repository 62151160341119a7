// The demo app's assistant panel at GET /, in headless Chromium, on each
// transport: a prompt streams token by token to the same text a direct
// Connect client reads for that completion (and the embedded model's
// deterministic reply to the prompt); Cancel ends it as canceled, its text
// stopped where the completion's log stops; a reload and a transport switch
// mid-answer resume it from the last token shown, to exactly the full text.
// A completion lost in a server restart shows as an error, and the next
// question is answered. It fits a 390 px wide screen, and the pages log no
// console errors.
//
// The embedded model is paced at 40 ms a token here (--token-interval; the
// test servers' default is 2 ms) and the prompt draws its longest reply, 43
// words: about 1.7 s an answer, so a test acting after a few tokens acts
// mid-answer.
//
// The screenshot docs/images/demo-assistant.png is taken only with
// RIVULET_SCREENSHOTS=1, as in demo-screenshots.test.ts:
//   RIVULET_SCREENSHOTS=1 npx vitest run test/e2e/demo-assistant.test.ts
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type CompleteResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { launchChromium } from "../helpers/browser.js";
import { demoTransports, openDemo, type DemoTab, type DemoTransport } from "../helpers/demo-page.js";
import { bearer, clientFor, collect, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";

/** The embedded model's reply to this prompt is 43 words, its longest. */
const prompt = "Explain how streams resume";
const words = (text: string) => text.split(" ").filter(Boolean).length;

describe.skipIf(!hasChromium())("the demo's assistant panel in headless Chromium", { timeout: 60_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  /** The model's reply to `prompt`, read by a direct client: what every uninterrupted answer shows. */
  let reference: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    // Development mode (each page mints its tokens at /dev/token), and a model slow enough to act mid-answer.
    server = await startTestServer({ config: { authSecret: undefined, tokenIntervalMs: 40 } });
    [browser, reference] = await Promise.all([launchChromium(), direct("reference").then((d) => d.text({ messages: [{ role: "user", content: prompt }] }))]);
    expect(words(reference)).toBe(43);
  }, 60_000);
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A Connect client straight to the server as `user`: the text of a completion, read from its start to its final event. */
  async function direct(user: string) {
    const token = await (await fetch(`${server.url}/dev/token?user=${user}`)).text();
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    return {
      async text(request: Parameters<typeof chat.complete>[0]): Promise<string> {
        const events: CompleteResponse[] = await collect(chat.complete(request, bearer(token)));
        return events.map((event) => event.delta).join("");
      },
    };
  }

  /** The demo joined as `user` on `kind` in a new browser context (its own sessionStorage: another user), once its Ask button is enabled. */
  async function join(user: string, kind: DemoTransport, width = 1024): Promise<DemoTab> {
    const tab = await openDemo(
      browser,
      server.url,
      { user, room: "assistant", transport: kind },
      { context: { viewport: { width, height: 800 }, deviceScaleFactor: 1 }, timeoutMs: 15_000 },
    );
    contexts.push(tab.page.context());
    await tab.page.waitForSelector("#ask:enabled");
    return tab;
  }

  async function ask(page: Page, text: string): Promise<void> {
    await page.fill("#prompt", text);
    await page.click("#ask");
    await page.waitForSelector("#cancel:enabled");
  }

  /** Waits until the answer shows at least `count` words, then returns it. */
  async function waitForWords(page: Page, count: number): Promise<string> {
    await page.waitForFunction((n) => (document.getElementById("answer")?.textContent ?? "").split(" ").filter(Boolean).length >= n, count);
    return (await page.textContent("#answer")) ?? "";
  }

  /** The answer once the panel shows `state` (done, canceled…), checked against the completion's log read by a direct client. */
  async function finalAnswer(page: Page, user: string, state: string): Promise<string> {
    await page.waitForSelector(`#answer-state[data-state='${state}']`);
    const shown = (await page.textContent("#answer")) ?? "";
    const completionId = (await page.getAttribute("#answer", "data-completion-id")) ?? "";
    expect(completionId).not.toBe("");
    expect(shown).toBe(await (await direct(user)).text({ completionId }));
    return shown;
  }

  describe.each(demoTransports)("on %s", (kind) => {
    it("streams an answer token by token to the completion's full text", async () => {
      const user = `asker-${kind}`;
      const { page, errors } = await join(user, kind);
      await ask(page, prompt);
      expect(await page.textContent("#asked")).toBe(prompt);
      // Token by token: a part shows while the rest is still coming.
      const part = await waitForWords(page, 2);
      expect(reference.startsWith(part)).toBe(true);
      expect(await finalAnswer(page, user, "done")).toBe(reference);
      expect(await page.textContent("#answer-state")).toBe("done (43 tokens)");
      expect(await page.isDisabled("#cancel")).toBe(true);
      // Another question after it: a new completion, streamed the same way.
      await ask(page, "What about a restart?");
      const second = await finalAnswer(page, user, "done");
      expect(words(second)).toBe(12);
      expect(await page.textContent("#answer-state")).toBe("done (12 tokens)");
      expect(errors).toEqual([]);
    });

    it("cancels mid-answer: the answer stops and shows canceled", async () => {
      const user = `canceler-${kind}`;
      const { page, errors } = await join(user, kind);
      await ask(page, prompt);
      await waitForWords(page, 2);
      await page.click("#cancel");
      const shown = await finalAnswer(page, user, "canceled");
      // A prefix of the full reply, cut before its end.
      expect(reference.startsWith(shown)).toBe(true);
      expect(words(shown)).toBeLessThan(43);
      expect(await page.textContent("#answer-state")).toBe(`canceled after ${words(shown)} tokens`);
      expect(await page.isEnabled("#ask")).toBe(true);
      expect(errors).toEqual([]);
    });

    it("resumes after a reload mid-answer, with no token lost or doubled", async () => {
      const user = `reloader-${kind}`;
      const { page, errors } = await join(user, kind);
      await ask(page, prompt);
      const before = await waitForWords(page, 3);
      expect(words(before)).toBeLessThan(43);
      await page.reload();
      // The page joins again by itself, as the same user on the same transport, and the panel resumes.
      await page.waitForSelector("#state[data-state='connected']");
      expect(await page.inputValue("#transport")).toBe(kind);
      expect(await finalAnswer(page, user, "done")).toBe(reference);
      expect(await page.textContent("#asked")).toBe(prompt);
      // The finished answer outlives another reload.
      await page.reload();
      await page.waitForSelector("#answer-state[data-state='done']");
      expect(await page.textContent("#answer")).toBe(reference);
      expect(errors).toEqual([]);
    });

    it("resumes across transport switches mid-answer", async () => {
      const user = `switcher-${kind}`;
      const { page, errors } = await join(user, kind);
      await ask(page, prompt);
      const others = demoTransports.filter((other) => other !== kind);
      let seen = await waitForWords(page, 3);
      expect(words(seen)).toBeLessThan(43);
      for (const other of others) {
        await page.selectOption("#transport", other);
        seen = await waitForWords(page, words(seen) + 3);
      }
      expect(await finalAnswer(page, user, "done")).toBe(reference);
      expect(errors).toEqual([]);
    });
  });

  it("fits a 390 px wide screen without horizontal scrolling", async () => {
    const { page, errors } = await join("narrow", "websocket", 390);
    await ask(page, prompt);
    expect(await finalAnswer(page, "narrow", "done")).toBe(reference);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(errors).toEqual([]);
  });

  it("shows a completion lost in a server restart as an error, then answers the next question", async () => {
    const { page, errors } = await join("restarted", "websocket");
    await ask(page, prompt);
    await waitForWords(page, 3);
    // The in-memory broker's logs go with the process: the new one does not know the completion.
    const port = server.port;
    await server.close();
    server = await startTestServer({ config: { authSecret: undefined, tokenIntervalMs: 40, port } });
    // Either the old process ended it (finish_reason error) or the new one refuses to resume it (not_found): an error, shown.
    await page.waitForSelector("#answer-state[data-state='error']");
    expect(await page.textContent("#answer-state")).toMatch(/^error: (the model failed after \d+ tokens|\[not_found\] completion expired or unknown)$/);
    expect(await page.isEnabled("#ask")).toBe(true);
    await ask(page, "What about a restart?");
    expect(words(await finalAnswer(page, "restarted", "done"))).toBe(12);
    // Only the browser's own lines about refused connections while the server was down.
    expect(errors.filter((line) => !/net::ERR_|WebSocket connection to/.test(line))).toEqual([]);
  });

  describe.skipIf(process.env.RIVULET_SCREENSHOTS !== "1")("screenshot", () => {
    it("the assistant panel with a finished answer", async () => {
      const { page } = await join("alice", "websocket", 1024);
      await ask(page, prompt);
      await finalAnswer(page, "alice", "done");
      await page.locator("#assistant").screenshot({ path: fileURLToPath(new URL("../../docs/images/demo-assistant.png", import.meta.url)) });
    });
  });
});
