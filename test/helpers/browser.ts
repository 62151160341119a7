import { chromium, type Browser, type Page } from "playwright-core";
import { chromiumPath } from "./system.js";

/**
 * Launches Debian's headless Chromium. The flags keep it off the network
 * (this machine reaches only package registries) and fit running as root.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** What `eventSourcePage` records: every event its EventSource dispatches, in order. */
export interface EventSourceLogEntry {
  readonly type: string;
  readonly data: string | null;
  readonly lastEventId: string | null;
  /** The source's readyState when the event came: 0 reconnecting, 1 open, 2 closed for good. */
  readonly readyState: number;
}

/**
 * A test page: `openStream(url)` opens a native EventSource and logs every
 * `message`, `end` and `error` event on `window.log`, leaving reconnection
 * to the browser as a real page would.
 */
export const eventSourcePage = `<!doctype html><meta charset="utf-8"><title>SSE test page</title><script>
  window.log = [];
  window.openStream = (url) => {
    const source = new EventSource(url);
    window.source = source;
    for (const type of ["message", "end", "error"]) {
      source.addEventListener(type, (event) => {
        window.log.push({ type, data: event.data ?? null, lastEventId: event.lastEventId ?? null, readyState: source.readyState });
      });
    }
  };
</script>`;

/** Opens `body` as `origin`/test.html, served by the browser's router so that the page shares the server's origin. */
export async function openPageAt(browser: Browser, origin: string, body = eventSourcePage): Promise<Page> {
  const page = await browser.newPage();
  await page.route(`${origin}/test.html`, (route) => route.fulfill({ contentType: "text/html", body }));
  await page.goto(`${origin}/test.html`);
  return page;
}

/** Opens the native EventSource of an `eventSourcePage` on `path`. */
export async function openEventSource(page: Page, path: string): Promise<void> {
  await page.evaluate((url) => (window as unknown as { openStream(url: string): void }).openStream(url), path);
}

/** What an `eventSourcePage` has logged so far. */
export function eventSourceLog(page: Page): Promise<EventSourceLogEntry[]> {
  return page.evaluate(() => (window as unknown as { log: EventSourceLogEntry[] }).log);
}
