import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";
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

/** A page bundled from a TypeScript entry, served from its own loopback origin. */
export interface BundledPage {
  /** http://127.0.0.1:<port>: list it in the server's allowed origins. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Bundles `entry` for the browser with esbuild and serves it as the only page
 * of an HTTP server on loopback. The page comes from its own origin (Chromium
 * lets a page reach local addresses only from a local one; IndexedDB and Web
 * Locks need a secure context, which loopback is), so the Rivulet server under
 * test must allow that origin. `workingDir` resolves the entry's imports from
 * another project (an installed package).
 */
export async function serveBundledPage(entry: string, workingDir?: string): Promise<BundledPage> {
  const built = await build({
    entryPoints: [entry],
    absWorkingDir: workingDir,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "chrome110",
    write: false,
  });
  const script = built.outputFiles[0]!.text.replace(/<\/script/g, "<\\/script");
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(`<!doctype html><meta charset="utf-8"><script>${script}</script>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
