import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { nextEvents, readSse, ssePath } from "../helpers/sse.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";

/**
 * Every way an SSE request can be wrong gets a defined HTTP status and a
 * Connect error JSON body (before the stream starts) or an `event: error`
 * (after); a bystander's SSE stream keeps working through all of them.
 */
describe("SSE errors", () => {
  let server: TestServer;
  let token: string;
  let bystander: AsyncGenerator<{ id?: string; data: string }>;
  beforeAll(async () => {
    server = await startTestServer({
      config: { maxMessageBytes: 2048, allowedOrigins: ["https://app.example"] },
      // A test-only implementation of the test-only service: fails after one message with a
      // plain Error whose text must never reach a client.
      extraServices: () => [{ service: CounterService, impl: failingCounter() }],
    });
    token = await server.token("alice");
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    await chat.send({ room: "bystander", text: "before" }, bearer(token));
    bystander = readSse(await get(ssePath(subscribe, { room: "bystander", history: 1 })));
    expect((await nextEvents(bystander, 1))[0]!.data).toContain('"text":"before"');
  });
  afterAll(async () => {
    await bystander.return(undefined);
    await server.close();
  });

  function get(path: string, headers: Record<string, string> = {}, method = "GET") {
    return fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...headers } });
  }

  async function refused(path: string, headers: Record<string, string> = {}, method = "GET") {
    const response = await get(path, headers, method);
    return { status: response.status, headers: response.headers, body: JSON.parse(await response.text()) as { code: string; message: string } };
  }

  it.each([
    [
      "an unknown method",
      "/sse/rivulet.chat.v1.ChatService/Shout?message={}",
      404,
      "unimplemented",
      "unknown method rivulet.chat.v1.ChatService/Shout: SSE serves /sse/<package>.<Service>/<Method>",
    ],
    [
      "an unknown service",
      "/sse/rivulet.nope.v1.Nope/Subscribe",
      404,
      "unimplemented",
      "unknown method rivulet.nope.v1.Nope/Subscribe: SSE serves /sse/<package>.<Service>/<Method>",
    ],
    [
      "a unary method",
      ssePath("rivulet.chat.v1.ChatService/Send", { room: "r", text: "x" }),
      405,
      "unimplemented",
      "rivulet.chat.v1.ChatService/Send is a unary method; SSE serves server-streaming methods only (call it with POST /rivulet.chat.v1.ChatService/Send)",
    ],
    [
      "malformed JSON",
      `/sse/${subscribe}?message=%7B`,
      400,
      "invalid_argument",
      expect.stringMatching(/^message is not a valid rivulet\.chat\.v1\.SubscribeRequest in proto3 JSON: /),
    ],
    [
      "a wrong field type",
      ssePath(subscribe, { room: 5 }),
      400,
      "invalid_argument",
      expect.stringMatching(/^message is not a valid rivulet\.chat\.v1\.SubscribeRequest in proto3 JSON: /),
    ],
    ["an invalid room", ssePath(subscribe, { room: "a/b" }), 400, "invalid_argument", expect.stringContaining("room")],
    ["an unknown encoding", `/sse/${subscribe}?message={}&encoding=xml`, 400, "invalid_argument", 'encoding must be "json" or "proto", not "xml"'],
    [
      "proto without base64",
      `/sse/${subscribe}?message=AA&encoding=proto`,
      400,
      "invalid_argument",
      "encoding=proto needs base64=1 and the message in base64url",
    ],
    ["malformed base64", `/sse/${subscribe}?message=%25%25&encoding=proto&base64=1`, 400, "invalid_argument", "message is not valid base64 or base64url"],
    [
      "malformed Protobuf",
      `/sse/${subscribe}?message=Cv__&encoding=proto&base64=1`,
      400,
      "invalid_argument",
      expect.stringMatching(/^message is not a valid rivulet\.chat\.v1\.SubscribeRequest in Protobuf binary: /),
    ],
    [
      "compression",
      `/sse/${subscribe}?message={}&compression=gzip`,
      400,
      "invalid_argument",
      'compression "gzip" is not supported; send the message uncompressed',
    ],
    [
      "a message over the size limit",
      ssePath(subscribe, { room: "x".repeat(3000) }),
      429,
      "resource_exhausted",
      expect.stringMatching(/more than the limit of 2048$/),
    ],
    ["a malformed cursor", ssePath(subscribe, { room: "r", cursor: "!!" }), 400, "invalid_argument", "malformed cursor"],
  ])("%s", async (_name, path, status, code, message) => {
    const result = await refused(path);
    expect(result).toMatchObject({ status, body: { code, message } });
    expect(result.headers.get("content-type")).toBe("application/json");
  });

  it("a bad Last-Event-ID → 400: too long, or with CR, LF or NUL (query parameter)", async () => {
    expect((await refused(ssePath(subscribe, { room: "r" }), { "last-event-id": "x".repeat(129) })).body).toEqual({
      code: "invalid_argument",
      message: "Last-Event-ID must be at most 128 characters",
    });
    for (const bad of ["a\nb", "a\rb", "a\0b"]) {
      const result = await refused(ssePath(subscribe, { room: "r" }, { lastEventId: bad }));
      expect(result).toMatchObject({ status: 400, body: { code: "invalid_argument", message: "lastEventId must not contain NUL, CR or LF" } });
    }
    // A Last-Event-ID from another room is a cursor of another stream.
    const other = (await clientFor(ChatService, transportFor(server.url, "connect", "1.1")).send({ room: "elsewhere", text: "x" }, bearer(token))).message!
      .cursor;
    expect((await refused(ssePath(subscribe, { room: "r" }), { "last-event-id": other })).body).toEqual({
      code: "invalid_argument",
      message: "cursor belongs to another stream",
    });
  });

  it("POST (or any method but GET) → 405 with Allow: GET", async () => {
    const result = await refused(ssePath(subscribe, { room: "r" }), {}, "POST");
    expect(result).toMatchObject({ status: 405, body: { code: "unimplemented", message: "SSE takes GET, not POST" } });
    expect(result.headers.get("allow")).toBe("GET");
  });

  it("credentials: none or a bad token → 401 with WWW-Authenticate; a cookie or access_token work", async () => {
    const path = ssePath(subscribe, { room: "r" });
    const none = await fetch(`${server.url}${path}`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect(await none.json()).toEqual({ code: "unauthenticated", message: "missing credentials: send Authorization: Bearer <token>" });
    expect((await refused(path, { authorization: "Bearer not.a.jwt" })).body).toEqual({ code: "unauthenticated", message: "invalid token" });
    expect((await fetch(`${server.url}${path}&access_token=not%0Aa%20token`)).status).toBe(401);
    const badCookie = await fetch(`${server.url}${path}`, { headers: { cookie: "access_token=%E0%A4%A" } });
    expect({ status: badCookie.status, body: await badCookie.json() }).toEqual({ status: 401, body: { code: "unauthenticated", message: "invalid token" } });

    const byCookie = await fetch(`${server.url}${ssePath(subscribe, { room: "r" })}`, { headers: { cookie: `theme=dark; access_token=${token}` } });
    expect(byCookie.status).toBe(200);
    expect(byCookie.headers.get("cache-control")).toBe("no-cache, no-transform");
    await byCookie.body?.cancel();
    const byQuery = await fetch(`${server.url}${ssePath(subscribe, { room: "r" }, { access_token: token })}`);
    expect(byQuery.status).toBe(200);
    // A URL holding a token must not be stored by any cache.
    expect(byQuery.headers.get("cache-control")).toBe("no-store, no-transform");
    await byQuery.body?.cancel();
  });

  it("forbidden → 403 permission_denied; unknown → 404 not_found", async () => {
    const progress = clientFor(ProgressService, transportFor(server.url, "connect", "1.1"));
    const { job } = await progress.start({ kind: "export" }, bearer(await server.token("bob")));
    expect(await refused(ssePath("rivulet.progress.v1.ProgressService/Watch", { jobId: job!.id }))).toMatchObject({
      status: 403,
      body: { code: "permission_denied", message: "only the job's owner or a worker may watch it" },
    });
    expect(await refused(ssePath("rivulet.progress.v1.ProgressService/Watch", { jobId: "nope" }))).toMatchObject({
      status: 404,
      body: { code: "not_found", message: "job nope not found" },
    });
  });

  it("a failure after the first event is an error event with the code; a bug's own text never leaks", async () => {
    const response = await get(ssePath("rivulet.testing.v1.CounterService/Count", { to: 5 }));
    expect(response.status).toBe(200);
    const events = await nextEvents(readSse(response), 3);
    expect(events).toEqual([
      { event: undefined, id: "1", data: '{"value":1,"cursor":"1"}' },
      { event: "error", id: undefined, data: '{"code":"internal","message":"internal error"}' },
    ]);
    // A deliberate ConnectError keeps its code and message.
    const refusedLater = await nextEvents(readSse(await get(ssePath("rivulet.testing.v1.CounterService/Count", { to: 5, cursor: "1" }))), 3);
    expect(refusedLater).toEqual([
      { event: undefined, id: "2", data: '{"value":2,"cursor":"2"}' },
      { event: "error", id: undefined, data: '{"code":"data_loss","message":"counted past 2"}' },
    ]);
  });

  it("a failure before the first event from a bug → 500 internal, without its text", async () => {
    expect(await refused(ssePath("rivulet.testing.v1.CounterService/Count", { to: 13 }))).toMatchObject({
      status: 500,
      body: { code: "internal", message: "internal error" },
    });
  });

  it("CORS: an allowed origin gets its headers and a preflight answer; others get none", async () => {
    const allowed = await get(ssePath(subscribe, { room: "r" }), { origin: "https://app.example" });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
    await allowed.body?.cancel();
    const other = await get(ssePath(subscribe, { room: "r" }), { origin: "https://evil.example" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    await other.body?.cancel();
    const preflight = await fetch(`${server.url}${ssePath(subscribe, { room: "r" })}`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET", "access-control-request-headers": "authorization, last-event-id" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization.*Last-Event-ID/);
  });

  it("keeps serving: the bystander's stream still receives live messages", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "grpc", "2"));
    const next = nextEvents(bystander, 1);
    await chat.send({ room: "bystander", text: "after" }, bearer(token));
    expect((await next)[0]!.data).toContain('"text":"after"');
  });
});

/** Counts like the real test service, but breaks: `to: 13` at once with a bug, else after the first number. */
function failingCounter(): ServiceImpl<typeof CounterService> {
  return {
    async *count(request) {
      if (request.to === 13) throw new Error("database password is hunter2");
      const first = request.cursor === "" ? 1 : Number(request.cursor) + 1;
      yield { value: first, cursor: String(first) };
      if (first === 1) throw new Error("ECONNREFUSED /var/run/secret.sock");
      throw new ConnectError(`counted past ${first}`, Code.DataLoss);
    },
    echo: (request) => ({ text: request.text }),
  };
}
