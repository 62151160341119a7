import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("health, readiness, metrics and the development token endpoint", () => {
  let server: TestServer;
  let development: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    development = await startTestServer({ config: { authSecret: undefined } });
  });
  afterAll(async () => {
    await server.close();
    await development.close();
  });

  it("serves /healthz and /readyz", async () => {
    expect(await (await fetch(`${server.url}/healthz`)).text()).toBe("ok\n");
    const ready = await fetch(`${server.url}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, "ready\n"]);
  });

  it("serves Prometheus metrics with connection counts per transport and event-loop delay", async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    expect(text).toMatch(/rivulet_connections\{transport="http1"\} [1-9]/);
    expect(text).toContain("nodejs_eventloop_lag_p99_seconds");
  });

  it("mints working tokens at /dev/token in development mode only", async () => {
    expect((await fetch(`${server.url}/dev/token?user=alice`)).status).toBe(404);
    const response = await fetch(`${development.url}/dev/token?user=alice&roles=publisher`);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const token = await response.text();
    const send = await fetch(`${development.url}/rivulet.chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ room: "dev", text: "hi" }),
    });
    expect(send.status).toBe(200);
    expect((await fetch(`${development.url}/dev/token?user=`)).status).toBe(400);
    expect((await fetch(`${development.url}/dev/token?user=a&roles=ADMIN!`)).status).toBe(400);
  });

  it("sets the token as an HttpOnly, Secure, SameSite=Strict cookie on ?cookie=1, and calls authenticate with the cookie alone", async () => {
    const response = await fetch(`${development.url}/dev/token?user=carol&cookie=1`);
    const cookie = response.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^access_token=[\w-]+\.[\w-]+\.[\w-]+; Path=\/; Max-Age=86400; HttpOnly; Secure; SameSite=Strict$/);
    const send = await fetch(`${development.url}/rivulet.chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { cookie: cookie.split(";")[0]!, "content-type": "application/json" },
      body: JSON.stringify({ room: "dev", text: "by cookie" }),
    });
    expect(send.status).toBe(200);
    expect(((await send.json()) as { message: { author: string } }).message.author).toBe("carol");
  });

  it("serves the demo page", async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await response.text()).toContain("<title>Rivulet</title>");
  });

  it("answers /favicon.ico with 204 and a day of caching, not a 404", async () => {
    const response = await fetch(`${server.url}/favicon.ico`);
    expect({ status: response.status, cache: response.headers.get("cache-control"), body: await response.text() }).toEqual({
      status: 204,
      cache: "public, max-age=86400",
      body: "",
    });
  });
});
