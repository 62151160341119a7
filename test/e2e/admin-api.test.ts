import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/rivulet/admin/v1/admin_pb.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { hashApiKey } from "../../src/auth/api-keys.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { bearer, clientFor, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { testTempDir } from "../helpers/temp-dir.js";

/**
 * AdminService with a real key file, a real server and real clients: what a
 * key may do, what other credentials may not, and that the log names the key
 * and never holds it.
 */
const key = "rvk_" + "k".repeat(43);
const otherKey = "rvk_" + "o".repeat(43);

async function failure(promise: Promise<unknown>): Promise<{ code: Code; message: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, message: connectError.rawMessage };
  }
}

describe("AdminService", () => {
  let server: TestServer;
  let webSocket: WebSocketTransport;
  let transports: Record<string, Transport>;
  const lines: string[] = [];
  const keyAuth = bearer(key);

  beforeAll(async () => {
    const dir = testTempDir("api-keys-");
    const file = join(dir, "keys");
    writeFileSync(file, `# the backends of this test\n\n${hashApiKey(key)} billing-backend\n  ${hashApiKey("rvk_unused")}   spare  \n`);
    server = await startTestServer({
      config: { apiKeysFile: file, logLevel: "info" },
      logDestination: new Writable({ write: (chunk: Buffer, _encoding, callback) => (lines.push(chunk.toString()), callback()) }),
    });
    webSocket = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws`, token: key });
    transports = {
      "Connect over HTTP/1.1": transportFor(server.url, "connect", "1.1"),
      "gRPC over h2c": transportFor(server.url, "grpc", "2"),
      "gRPC-Web over HTTP/1.1": transportFor(server.url, "grpc-web", "1.1"),
      "WebSocket (typed transport)": webSocket,
    };
  });
  afterAll(async () => {
    webSocket?.close();
    await server?.close();
  });

  const admin = (name = "Connect over HTTP/1.1") => clientFor(AdminService, transports[name]!);

  it("PublishMessage posts as any author, with its cursor, once per idempotency key, and subscribers get it", async () => {
    const token = await server.token("carol");
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const first = (await chat.send({ room: "announcements", text: "before" }, bearer(token))).message!;
    const { message } = await admin().publishMessage({ room: "announcements", author: "system", text: "maintenance at 5", idempotencyKey: "m-1" }, keyAuth);
    expect({ room: message!.room, author: message!.author, text: message!.text }).toEqual({
      room: "announcements",
      author: "system",
      text: "maintenance at 5",
    });
    expect(message!.id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    const again = await admin().publishMessage({ room: "announcements", author: "system", text: "maintenance at 5", idempotencyKey: "m-1" }, keyAuth);
    expect(again.message).toEqual(message);
    const [response] = await take(chat.subscribe({ room: "announcements", cursor: first.cursor }, bearer(token)), 1);
    expect(response!.event).toEqual({ case: "message", value: message });
    expect(response!.cursor).toBe(message!.cursor);
  });

  it("PublishMessage skips room access (a DM, as its outsider) and validates like Send", async () => {
    const { message } = await admin().publishMessage({ room: "dm#alice,bob", author: "system", text: "a notice", idempotencyKey: "" }, keyAuth);
    expect({ room: message!.room, author: message!.author }).toEqual({ room: "dm#alice,bob", author: "system" });
    expect(await failure(admin().publishMessage({ room: "no spaces", author: "system", text: "x", idempotencyKey: "" }, keyAuth))).toEqual({
      code: Code.InvalidArgument,
      message: "room may contain only letters, digits, '-', '_', '.', ':', '#', ',' and '@'",
    });
    expect(await failure(admin().publishMessage({ room: "lobby", author: "", text: "x", idempotencyKey: "" }, keyAuth))).toEqual({
      code: Code.InvalidArgument,
      message: "author is required",
    });
    expect(await failure(admin().publishMessage({ room: "lobby", author: "system", text: " ", idempotencyKey: "" }, keyAuth))).toEqual({
      code: Code.InvalidArgument,
      message: "text must not be only whitespace",
    });
  });

  it("Notify stores one notification per distinct user, in order, each in its user's log", async () => {
    const { notifications } = await admin().notify(
      { userIds: ["u1", "u2", "u1", "u3"], kind: "invoice.paid", title: "Paid", body: "Thanks", data: { invoice: "42" }, idempotencyKey: "n-1" },
      keyAuth,
    );
    expect(notifications.map((n) => [n.userId, n.kind, n.title, n.body, n.data])).toEqual([
      ["u1", "invoice.paid", "Paid", "Thanks", { invoice: "42" }],
      ["u2", "invoice.paid", "Paid", "Thanks", { invoice: "42" }],
      ["u3", "invoice.paid", "Paid", "Thanks", { invoice: "42" }],
    ]);
    const again = await admin().notify(
      { userIds: ["u2"], kind: "invoice.paid", title: "Paid", body: "Thanks", data: { invoice: "42" }, idempotencyKey: "n-1" },
      keyAuth,
    );
    expect(again.notifications).toEqual([notifications[1]]);
    const inbox = clientFor(NotificationService, transportFor(server.url, "connect", "2"));
    const [response] = await take(inbox.subscribe({ history: 10 }, bearer(await server.token("u2"))), 1);
    expect(response!.event).toEqual({ case: "notification", value: notifications[1] });
  });

  it("Notify refuses no users, more than 1000 and a bad user id, naming the field", async () => {
    const base = { kind: "k", title: "", body: "", data: {}, idempotencyKey: "" };
    expect(await failure(admin().notify({ ...base, userIds: [] }, keyAuth))).toEqual({ code: Code.InvalidArgument, message: "user_ids is required" });
    const many = Array.from({ length: 1001 }, (_, i) => `u${i}`);
    expect(await failure(admin().notify({ ...base, userIds: many }, keyAuth))).toEqual({
      code: Code.InvalidArgument,
      message: "user_ids has more than 1000 entries",
    });
    expect(await failure(admin().notify({ ...base, userIds: ["ok", "not ok"] }, keyAuth))).toEqual({
      code: Code.InvalidArgument,
      message: "user_ids must be at most 128 printable ASCII characters",
    });
    const { notifications } = await admin().notify({ ...base, userIds: many.slice(0, 1000) }, keyAuth);
    expect(notifications.map((n) => n.userId)).toEqual(many.slice(0, 1000));
  });

  it("Presence gives the room's members now; Disconnect ends the user's streams with permission_denied, others stay", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    // Each stream starts after a message already sent, so its first response proves it open (and its user present).
    const start = (await admin().publishMessage({ room: "ops", author: "bot", text: "start", idempotencyKey: "" }, keyAuth)).message!;
    await admin().publishMessage({ room: "ops", author: "bot", text: "first", idempotencyKey: "" }, keyAuth);
    const dave = chat.subscribe({ room: "ops", cursor: start.cursor }, bearer(await server.token("dave")))[Symbol.asyncIterator]();
    const erin = chat.subscribe({ room: "ops", cursor: start.cursor }, bearer(await server.token("erin")))[Symbol.asyncIterator]();
    expect((await dave.next()).value).toMatchObject({ event: { case: "message", value: { text: "first" } } });
    expect((await erin.next()).value).toMatchObject({ event: { case: "message", value: { text: "first" } } });
    expect((await admin().presence({ room: "ops" }, keyAuth)).members).toEqual(["dave", "erin"]);

    const daveNext = dave.next();
    const erinNext = erin.next();
    const { endedHere } = await admin().disconnect({ userId: "dave" }, keyAuth);
    expect(endedHere).toBe(1);
    expect(await failure(daveNext)).toEqual({ code: Code.PermissionDenied, message: "disconnected by the server API" });
    // erin's stream is still open: it receives the next message.
    const { message } = await admin().publishMessage({ room: "ops", author: "bot", text: "still here?", idempotencyKey: "" }, keyAuth);
    expect((await erinNext).value).toMatchObject({ event: { case: "message", value: { id: message!.id } } });
    await erin.return?.();
    expect((await admin().disconnect({ userId: "nobody" }, keyAuth)).endedHere).toBe(0);
  });

  it("RemoveHistory empties the room: History is empty, an older cursor resumes with a gap, live subscribers stay", async () => {
    const token = bearer(await server.token("frank"));
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const old = (await chat.send({ room: "purge", text: "one" }, token)).message!;
    await chat.send({ room: "purge", text: "two" }, token);
    const live = chat.subscribe({ room: "purge" }, token)[Symbol.asyncIterator]();
    const liveNext = live.next();
    await admin().removeHistory({ room: "purge" }, keyAuth);
    expect((await chat.history({ room: "purge" }, token)).messages).toEqual([]);
    const three = (await chat.send({ room: "purge", text: "three" }, token)).message!;
    expect((await liveNext).value).toMatchObject({ event: { case: "message", value: { text: "three" } } });
    await live.return?.();
    const resumed = await take(chat.subscribe({ room: "purge", cursor: old.cursor }, token), 2);
    expect(resumed[0]!.event.case).toBe("gap");
    expect(resumed[1]!.event).toEqual({ case: "message", value: three });
    expect((await chat.history({ room: "purge" }, token)).messages.map((m) => m.text)).toEqual(["three"]);
  });

  it("Info gives this instance's connections by transport and its topics with live subscribers", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const start = (await admin().publishMessage({ room: "info-room", author: "bot", text: "start", idempotencyKey: "" }, keyAuth)).message!;
    await admin().publishMessage({ room: "info-room", author: "bot", text: "hi", idempotencyKey: "" }, keyAuth);
    const stream = chat.subscribe({ room: "info-room", cursor: start.cursor }, bearer(await server.token("gina")))[Symbol.asyncIterator]();
    // Its first response: the stream is open and its topic has a feed.
    await stream.next();
    // Info itself over the WebSocket transport: its connection is open then.
    const { instances } = await admin("WebSocket (typed transport)").info({}, keyAuth);
    expect(instances).toHaveLength(1);
    expect(instances[0]!.id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(instances[0]!.topics).toContain("chat.room/info-room");
    expect(instances[0]!.connections.http2).toBeGreaterThanOrEqual(1);
    expect(instances[0]!.connections.websocket).toBe(1);
    await stream.return?.();
  });

  it.each(["Connect over HTTP/1.1", "gRPC over h2c", "gRPC-Web over HTTP/1.1", "WebSocket (typed transport)"])("accepts the key over %s", async (name) => {
    const { message } = await admin(name).publishMessage({ room: "transports", author: "system", text: name, idempotencyKey: "" }, keyAuth);
    expect(message!.text).toBe(name);
    expect((await admin(name).presence({ room: "transports" }, keyAuth)).members).toEqual([]);
  });

  it("refuses an unknown key with unauthenticated, a user's token with permission_denied, and takes an admin's token", async () => {
    const client = admin("gRPC over h2c");
    expect(await failure(client.info({}, bearer(otherKey)))).toEqual({ code: Code.Unauthenticated, message: "unknown API key" });
    expect(await failure(client.info({}, bearer(await server.token("mallory", ["publisher"]))))).toEqual({
      code: Code.PermissionDenied,
      message: 'the "admin" role is required',
    });
    expect(await failure(client.info({}))).toEqual({ code: Code.Unauthenticated, message: "missing credentials: send Authorization: Bearer <token>" });
    const adminToken = bearer(await server.token("ops-person", ["admin"]));
    const { message } = await client.publishMessage({ room: "lobby", author: "system", text: "by an admin", idempotencyKey: "" }, adminToken);
    expect(message!.author).toBe("system");
  });

  it("refuses the key on any other service with permission_denied, on every transport", async () => {
    for (const [name, transport] of Object.entries(transports)) {
      const chat = clientFor(ChatService, transport);
      expect({ name, error: await failure(chat.send({ room: "lobby", text: "as a user?" }, keyAuth)) }).toEqual({
        name,
        error: { code: Code.PermissionDenied, message: "API keys call rivulet.admin.v1.AdminService only" },
      });
    }
    const stream = clientFor(ChatService, transportFor(server.url, "connect", "2")).subscribe({ room: "lobby" }, keyAuth);
    expect(await failure(take(stream, 1))).toEqual({ code: Code.PermissionDenied, message: "API keys call rivulet.admin.v1.AdminService only" });
  });

  it("logs every call with the key's name or the admin's subject and the method, never the key", () => {
    const calls = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === "server API call");
    expect(calls).toContainEqual(expect.objectContaining({ apiKey: "billing-backend", method: "PublishMessage", level: 30 }));
    expect(calls).toContainEqual(expect.objectContaining({ apiKey: "billing-backend", method: "Notify" }));
    expect(calls).toContainEqual(expect.objectContaining({ apiKey: "billing-backend", method: "Disconnect" }));
    expect(calls).toContainEqual(expect.objectContaining({ apiKey: "billing-backend", method: "RemoveHistory" }));
    expect(calls).toContainEqual(expect.objectContaining({ apiKey: "billing-backend", method: "Info" }));
    expect(calls).toContainEqual(expect.objectContaining({ admin: "ops-person", method: "PublishMessage" }));
    const log = lines.join("");
    expect(log).not.toContain(key);
    expect(log).not.toContain(otherKey);
    expect(log).not.toContain(key.slice(4, 20));
    expect(log).not.toContain(hashApiKey(key));
  });
});
