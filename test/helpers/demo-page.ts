import type { Browser, BrowserContextOptions, Page } from "playwright-core";

/** The demo's transport picker's values. */
export const demoTransports = ["websocket", "sse", "connect"] as const;
export type DemoTransport = (typeof demoTransports)[number];

/** A demo tab: its page and the errors it logged (console errors and uncaught exceptions). */
export interface DemoTab {
  readonly page: Page;
  readonly errors: string[];
}

/** Who joins which room over which transport. */
export interface DemoJoin {
  readonly user: string;
  readonly room: string;
  readonly transport: DemoTransport;
}

export interface OpenDemoOptions {
  /** For the new browser context: a viewport, ignoreHTTPSErrors. */
  readonly context?: BrowserContextOptions;
  /** Playwright's wait for a selector or function; shorter than the tests' timeouts, so a failure names what it waited for. Default 10 s. */
  readonly timeoutMs?: number;
  /** Runs before the page loads the demo (to attach a DevTools session, say). */
  readonly beforeLoad?: (page: Page) => Promise<void>;
}

/**
 * The demo at `origin` in a new browser context (its own sessionStorage: another
 * user, as another browser profile would be), joined as `join` says, once its
 * state reads connected. The caller closes `tab.page.context()`.
 */
export async function openDemo(browser: Browser, origin: string, join: DemoJoin, options: OpenDemoOptions = {}): Promise<DemoTab> {
  const page = await (await browser.newContext(options.context)).newPage();
  page.setDefaultTimeout(options.timeoutMs ?? 10_000);
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  await options.beforeLoad?.(page);
  await page.goto(`${origin}/`);
  await page.fill("#user", join.user);
  await page.fill("#room", join.room);
  await page.selectOption("#transport", join.transport);
  await page.click("#join button");
  await page.waitForSelector("#state[data-state='connected']");
  return { page, errors };
}

/** Waits until `page`'s chat shows a message whose text is `text` (not `:text-is`, which skips an element whose text is split across children). */
export async function waitForChatLine(page: Page, text: string): Promise<void> {
  await page.waitForFunction((t) => [...document.querySelectorAll("#messages li")].some((item) => item.textContent === t), text);
}
