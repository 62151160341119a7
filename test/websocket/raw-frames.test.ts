import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, SendRequestSchema, SendResponseSchema, SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { PublishRequestSchema, PublishResponseSchema } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { WatchRequestSchema, WatchResponseSchema } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { CountRequestSchema, CountResponseSchema, EchoRequestSchema, EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { allTransports, bearer, clientFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openRawSocket, type RawSocket } from "./raw-socket.js";

const chat = "rivulet.chat.v1.ChatService";
const texts = (responses: { event: { case: string | undefined; value?: unknown } }[]) =>
  responses.map((r) => (r.event.case === "message" ? (r.event.value as { text: string }).text : r.event.case));

describe("raw rivulet.v1 frames over a ws client", () => {
  let server: TestServer;
  let token: string;
  let socket: RawSocket;
  beforeAll(async () => {
    server = await startTestServer({ extraServices: () => [counterService()] });
    token = await server.token("alice");
    socket = await openRawSocket(server.url, { token });
  });
  afterAll(async () => {
    socket.close();
    await server.close();
  });

  it("subscribes and sends on one socket", async () => {
    const room = "raw-one-socket";
    // A message already in the room: receiving it proves the subscription is attached before the live send.
    await clientFor(ChatService, allTransports(server.url)[0]!.transport).send({ room, text: "before" }, bearer(token));
    socket.call(1, `${chat}/Subscribe`, SubscribeRequestSchema, { room, history: 1 });
    const first = await socket.until(1, SubscribeResponseSchema, 1);
    expect(texts(first.messages)).toEqual(["before"]);
    expect(first.cursors[0]).toBe(first.messages[0]!.cursor);

    socket.call(2, `${chat}/Send`, SendRequestSchema, { room, text: "over the socket", idempotencyKey: "raw-1" });
    const sent = await socket.until(2, SendResponseSchema);
    expect(sent.error).toBeUndefined();
    expect(sent.messages).toHaveLength(1);
    expect(sent.messages[0]!.message).toMatchObject({ room, text: "over the socket", author: "alice" });
    expect(sent.cursors).toEqual([""]); // SendResponse has no top-level cursor

    const live = await socket.until(1, SubscribeResponseSchema, 1);
    expect(texts(live.messages)).toEqual(["over the socket"]);
    expect(live.cursors[0]).toBe(sent.messages[0]!.message!.cursor);

    socket.send({ kind: { case: "cancel", value: { id: 1 } } });
    expect((await socket.until(1, SubscribeResponseSchema)).error?.code).toBe("canceled");
  });

  it("runs several calls at once, each under its own id", async () => {
    const counter = "rivulet.testing.v1.CounterService";
    socket.call(10, `${counter}/Count`, CountRequestSchema, { to: 50 });
    socket.call(11, `${counter}/Count`, CountRequestSchema, { to: 3, cursor: "1" });
    socket.call(12, `${counter}/Echo`, EchoRequestSchema, { text: "hello" });
    const [a, b, c] = await Promise.all([socket.until(10, CountResponseSchema), socket.until(11, CountResponseSchema), socket.until(12, EchoResponseSchema)]);
    expect(a.messages.map((m) => m.value)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(a.cursors).toEqual(a.messages.map((m) => String(m.value)));
    expect(b.messages.map((m) => m.value)).toEqual([2, 3]);
    expect(c.messages.map((m) => m.text)).toEqual(["hello"]);
    expect([a.error, b.error, c.error]).toEqual([undefined, undefined, undefined]);
  });

  it("cancels a live stream, releases it, and lets the id be used again", async () => {
    const room = "raw-cancel";
    socket.call(20, `${chat}/Subscribe`, SubscribeRequestSchema, { room });
    socket.send({ kind: { case: "cancel", value: { id: 20 } } });
    const ended = await socket.until(20, SubscribeResponseSchema);
    expect(ended.error).toMatchObject({ code: "canceled" });
    // A cancel for a call that is gone is ignored; the id is free again.
    socket.send({ kind: { case: "cancel", value: { id: 20 } } });
    socket.call(20, "rivulet.testing.v1.CounterService/Echo", EchoRequestSchema, { text: "again" });
    expect((await socket.until(20, EchoResponseSchema)).messages[0]!.text).toBe("again");
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/rivulet_streams\{transport="websocket"\} 0/);
  });

  it("authenticates the socket's token once, and still checks any other token a call carries", async () => {
    const room = "raw-credentials";
    const sendAs = async (id: number, text: string, headers?: Record<string, string>) => {
      socket.call(id, `${chat}/Send`, SendRequestSchema, { room, text }, headers);
      return socket.until(id, SendResponseSchema);
    };
    // The handshake's token, twice: the second call is answered from the socket's memo of it.
    expect((await sendAs(50, "one")).messages[0]!.message).toMatchObject({ text: "one", author: "alice" });
    expect((await sendAs(51, "two")).messages[0]!.message).toMatchObject({ text: "two", author: "alice" });
    // Another user's token on the same socket is that user's, and a bad one is refused, memo or not.
    const bob = await server.token("bob");
    expect((await sendAs(52, "three", { authorization: `Bearer ${bob}` })).messages[0]!.message).toMatchObject({ author: "bob" });
    expect((await sendAs(53, "four", { authorization: "Bearer not-a-token" })).error?.code).toBe("unauthenticated");
    expect((await sendAs(54, "five", { authorization: `Bearer ${token}x` })).error?.code).toBe("unauthenticated");
    // And the socket's own token still works after them.
    expect((await sendAs(55, "six")).messages[0]!.message).toMatchObject({ text: "six", author: "alice" });
  });

  it("answers ping frames with pong", async () => {
    socket.send({ kind: { case: "ping", value: { nonce: 42n } } });
    expect((await socket.nextControl()).kind).toMatchObject({ case: "pong", value: { nonce: 42n } });
  });

  it("ends failed unary calls with their Connect code", async () => {
    socket.call(30, `${chat}/Send`, SendRequestSchema, { room: "bad room name!", text: "x" });
    expect((await socket.until(30, SendResponseSchema)).error?.code).toBe("invalid_argument");
    socket.call(31, "rivulet.testing.v1.CounterService/Echo", EchoRequestSchema, { text: "" });
    expect((await socket.until(31, EchoResponseSchema)).error).toEqual({ code: "invalid_argument", message: "text is required" });
    // alice lacks the publisher role: the same authorization as over Connect.
    socket.call(32, "rivulet.notify.v1.NotificationService/Publish", PublishRequestSchema, { userId: "bob", title: "hi" });
    expect((await socket.until(32, PublishResponseSchema)).error?.code).toBe("permission_denied");
  });

  it("ends failed streams with their Connect code", async () => {
    socket.call(40, "rivulet.progress.v1.ProgressService/Watch", WatchRequestSchema, { jobId: "no-such-job" });
    expect((await socket.until(40, WatchResponseSchema)).error?.code).toBe("not_found");
    socket.call(41, "rivulet.testing.v1.CounterService/Count", CountRequestSchema, { to: 0 });
    expect((await socket.until(41, CountResponseSchema)).error).toEqual({ code: "invalid_argument", message: "to must be 1 to 1000000" });
    socket.call(42, `${chat}/Subscribe`, SubscribeRequestSchema, { room: "a", cursor: "not-a-cursor" });
    expect((await socket.until(42, SubscribeResponseSchema)).error?.code).toBe("invalid_argument");
  });
});
