// GET / serves the demo app: the page, its bundle (built by scripts/build-web.mjs,
// which test/global-setup.ts runs), each with its content type, revalidated
// by ETag on every load; the favicon is an empty 204.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("the demo app's files", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it.each([
    ["/", "text/html; charset=utf-8", '<script type="module" src="/app.js"></script>'],
    ["/app.js", "text/javascript; charset=utf-8", "//# sourceMappingURL=app.js.map"],
    ["/app.js.map", "application/json; charset=utf-8", '"sources"'],
  ])("GET %s: %s, no-cache with an ETag, and 304 for that ETag", async (path, type, contains) => {
    const response = await fetch(`${server.url}${path}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(type);
    expect(response.headers.get("cache-control")).toBe("no-cache");
    const etag = response.headers.get("etag");
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    const body = await response.text();
    // Not toContain: a failure would print the whole bundle.
    expect(body.includes(contains)).toBe(true);
    expect(Number(response.headers.get("content-length"))).toBe(Buffer.byteLength(body));

    const again = await fetch(`${server.url}${path}`, { headers: { "if-none-match": etag! } });
    expect(again.status).toBe(304);
    expect(again.headers.get("etag")).toBe(etag);
    expect(await again.text()).toBe("");

    const head = await fetch(`${server.url}${path}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe(type);
  });

  it("answers the favicon with an empty 204 and leaves other paths and methods to the rest of the server", async () => {
    const favicon = await fetch(`${server.url}/favicon.ico`);
    expect(favicon.status).toBe(204);
    expect(favicon.headers.get("cache-control")).toBe("public, max-age=86400");
    expect((await fetch(`${server.url}/app.css`)).status).toBe(404);
    expect((await fetch(`${server.url}/`, { method: "POST" })).status).not.toBe(200);
  });
});
