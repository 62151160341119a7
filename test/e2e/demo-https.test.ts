// The demo app served over TLS (--tls-cert/--tls-key), where browsers speak
// HTTP/2: Connect-Web's fetch calls and the SSE streams then run over h2 (as
// Chromium's DevTools protocol reports it and the page shows it), WebSocket
// over wss, and chat works between two users on each transport.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../helpers/browser.js";
import { demoTransports, openDemo, waitForChatLine, type DemoTab, type DemoTransport } from "../helpers/demo-page.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";
import { createTestCertificate } from "../helpers/tls.js";

describe.skipIf(!hasChromium())("the demo over https", { timeout: 60_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    const { certFile, keyFile } = createTestCertificate();
    // Development mode (each page mints its tokens), over TLS with a self-signed certificate the browser is told to accept.
    server = await startTestServer({ config: { authSecret: undefined, tlsCert: certFile, tlsKey: keyFile } });
    browser = await launchChromium();
    context = await browser.newContext({ ignoreHTTPSErrors: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** A demo tab, and the HTTP version of each response it received (streams included), by path. */
  interface Tab extends DemoTab {
    readonly responses: { readonly path: string; readonly protocol: string }[];
  }

  /** The demo joined to `room` as `user` on `transport`, in its own context (as another browser profile). */
  async function join(user: string, room: string, transport: DemoTransport): Promise<Tab> {
    const responses: Tab["responses"][number][] = [];
    // Resource Timing lists a request only once its response ended; the DevTools protocol sees an open stream's headers.
    const recordResponses = async (page: Page) => {
      const devtools = await page.context().newCDPSession(page);
      devtools.on("Network.responseReceived", ({ response }) => responses.push({ path: new URL(response.url).pathname, protocol: response.protocol ?? "" }));
      await devtools.send("Network.enable");
    };
    const tab = await openDemo(browser, server.url, { user, room, transport }, { context: { ignoreHTTPSErrors: true }, beforeLoad: recordResponses });
    return { ...tab, responses };
  }

  /** The HTTP versions of the tab's responses whose path starts with `prefix`, each once. */
  const protocolsOf = (tab: Tab, prefix: string) => new Set(tab.responses.filter(({ path }) => path.startsWith(prefix)).map(({ protocol }) => protocol));

  it("serves the page over HTTP/2 and says so", async () => {
    const page = await context.newPage();
    const response = await page.goto(`${server.url}/`);
    expect(response?.status()).toBe(200);
    expect(await page.textContent("#transport-note")).toBe("Connect-Web uses HTTP/2 when the server offers it over TLS.");
    await page.waitForSelector("#protocol:text-is('h2')");
    await page.close();
  });

  it.each(demoTransports)("chat works between two users on %s, over HTTP/2 where the transport uses HTTP", async (kind) => {
    const room = `https-${kind}`;
    const alice = await join("alice", room, kind);
    const bob = await join("bob", room, kind);
    await alice.page.waitForSelector('#presence li:text-is("bob")');
    await bob.page.fill("#text", `over ${kind}`);
    await bob.page.click("#send");
    await waitForChatLine(alice.page, `bob: over ${kind}`);

    // Connect-Web: Send and the streams over fetch. SSE: the streams are GETs under /sse/, Send goes over Connect. Every one on h2.
    if (kind === "connect") expect(protocolsOf(bob, "/rivulet.chat.v1.ChatService/")).toEqual(new Set(["h2"]));
    if (kind === "sse") {
      expect(protocolsOf(bob, "/sse/rivulet.chat.v1.ChatService/")).toEqual(new Set(["h2"]));
      expect(protocolsOf(bob, "/rivulet.chat.v1.ChatService/")).toEqual(new Set(["h2"]));
    }
    // The WebSocket's upgrade is HTTP/1.1 (RFC 6455); the page and its token still came over h2.
    if (kind === "websocket") expect(protocolsOf(bob, "/dev/token")).toEqual(new Set(["h2"]));
    expect(await bob.page.textContent("#protocol")).toBe("h2");
    expect(alice.errors).toEqual([]);
    expect(bob.errors).toEqual([]);
    await Promise.all([alice.page.context().close(), bob.page.context().close()]);
  });
});
