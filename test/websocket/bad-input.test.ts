// Every bad input on GET /ws has a documented outcome (docs/protocol.md,
// "WebSocket"): a close code for the offending socket, or an `end` with a
// Connect code for the offending call. A bystander socket with a live
// subscription keeps receiving throughout, and the server stays healthy.
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { ChatService, SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { CountRequestSchema, CountResponseSchema, EchoRequestSchema, EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openRawSocket, type RawSocket } from "./raw-socket.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";
const echo = "rivulet.testing.v1.CounterService/Echo";
const room = "ws-bystander";
const maxCalls = 4;
const maxPayload = 4096;
const textsOf = (responses: SubscribeResponse[]) => responses.map((r) => (r.event.case === "message" ? r.event.value.text : r.event.case));

describe("bad input on the WebSocket", () => {
  let server: TestServer;
  let token: string;
  let bystander: RawSocket;
  let sent = 0;

  beforeAll(async () => {
    server = await startTestServer({
      extraServices: () => [counterService()],
      config: { wsMaxCalls: maxCalls, wsMaxPayloadBytes: maxPayload, allowedOrigins: ["https://app.example"] },
    });
    token = await server.token("alice");
    bystander = await openRawSocket(server.url, { token });
    // A message already in the room, replayed first: its arrival proves the live feed is attached.
    await chat().send({ room, text: "before the bystander" }, bearer(token));
    bystander.call(1, subscribe, SubscribeRequestSchema, { room, history: 1 });
    expect(textsOf((await bystander.until(1, SubscribeResponseSchema, 1)).messages)).toEqual(["before the bystander"]);
  });
  afterAll(async () => {
    bystander?.close();
    await server?.close();
  });

  const chat = () => clientFor(ChatService, transportFor(server.url, "connect", "1.1"));

  /** Sends one chat message over Connect: the bystander's subscription delivers it, and the server is healthy. */
  async function expectBystanderReceives(): Promise<void> {
    const text = `still here ${++sent}`;
    await chat().send({ room, text }, bearer(token));
    expect(textsOf((await bystander.until(1, SubscribeResponseSchema, 1)).messages)).toEqual([text]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  }

  it("closes with 1007 a binary frame that is not a ClientFrame", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.sendRaw(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    const closed = await socket.closed;
    expect(closed.code).toBe(1007);
    expect(closed.reason).toMatch(/^frame is not a rivulet\.bridge\.v1\.ClientFrame/);
    await expectBystanderReceives();
  });

  it("closes with 1003 a text frame", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.sendRaw('{"call":{"id":1}}');
    expect(await socket.closed).toEqual({ code: 1003, reason: "text frames are not supported: send binary rivulet.bridge.v1.ClientFrame" });
    await expectBystanderReceives();
  });

  it("closes with 1009 a frame over --ws-max-payload", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.call(1, echo, EchoRequestSchema, { text: "x".repeat(maxPayload) });
    expect((await socket.closed).code).toBe(1009);
    await expectBystanderReceives();
  });

  it("ends an unknown method with unimplemented and keeps the socket", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.call(1, "rivulet.chat.v1.ChatService/Nope", EchoRequestSchema, { text: "x" });
    expect((await socket.until(1, EchoResponseSchema)).error).toEqual({
      code: "unimplemented",
      message: "unknown method rivulet.chat.v1.ChatService/Nope",
    });
    socket.call(2, echo, EchoRequestSchema, { text: "after" });
    expect((await socket.until(2, EchoResponseSchema)).messages.map((m) => m.text)).toEqual(["after"]);
    socket.close();
  });

  it("ends a request that does not decode, and a call with id 0, with invalid_argument", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.send({ kind: { case: "call", value: { id: 7, method: echo, request: Uint8Array.from([0xff]) } } });
    expect((await socket.until(7, EchoResponseSchema)).error).toEqual({
      code: "invalid_argument",
      message: "request is not a valid rivulet.testing.v1.EchoRequest",
    });
    socket.call(0, echo, EchoRequestSchema, { text: "zero" });
    expect((await socket.until(0, EchoResponseSchema)).error).toEqual({ code: "invalid_argument", message: "call id must not be 0" });
    socket.close();
  });

  it("ends both calls when an open call's id is reused, with one end", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.call(5, subscribe, SubscribeRequestSchema, { room: "ws-reuse" });
    socket.call(5, echo, EchoRequestSchema, { text: "same id" });
    expect(await socket.until(5, EchoResponseSchema)).toEqual({
      messages: [],
      cursors: [],
      error: { code: "invalid_argument", message: "call id 5 is already in use" },
      ended: true,
    });
    // The id is free again and the socket serves on.
    socket.call(5, echo, EchoRequestSchema, { text: "reused after end" });
    expect((await socket.until(5, EchoResponseSchema)).messages.map((m) => m.text)).toEqual(["reused after end"]);
    expect(socket.log.filter((f) => f.kind.case === "end" && f.kind.value.id === 5)).toHaveLength(2);
    socket.close();
  });

  it("refuses calls past --ws-max-calls with resource_exhausted, and takes them again once one ends", async () => {
    const socket = await openRawSocket(server.url, { token });
    for (let id = 1; id <= maxCalls; id++) socket.call(id, subscribe, SubscribeRequestSchema, { room: `ws-flood-${id}` });
    for (let id = maxCalls + 1; id <= maxCalls + 20; id++) socket.call(id, echo, EchoRequestSchema, { text: "flood" });
    for (let id = maxCalls + 1; id <= maxCalls + 20; id++) {
      expect((await socket.until(id, EchoResponseSchema)).error).toEqual({
        code: "resource_exhausted",
        message: `more than ${maxCalls} calls open on one socket`,
      });
    }
    socket.send({ kind: { case: "cancel", value: { id: 1 } } });
    expect((await socket.until(1, SubscribeResponseSchema)).error?.code).toBe("canceled");
    socket.call(100, echo, EchoRequestSchema, { text: "room again" });
    expect((await socket.until(100, EchoResponseSchema)).messages.map((m) => m.text)).toEqual(["room again"]);
    await expectBystanderReceives();
    socket.close();
  });

  it("refuses a handshake from a foreign Origin with 403, and accepts listed and same-origin ones", async () => {
    await expect(openRawSocket(server.url, { token, origin: "https://evil.example" })).rejects.toMatchObject({ status: 403, body: "origin not allowed" });
    await expect(openRawSocket(server.url, { token, origin: "null" })).rejects.toMatchObject({ status: 403 });
    (await openRawSocket(server.url, { token, origin: "https://app.example" })).close();
    (await openRawSocket(server.url, { token, origin: server.url })).close();
    await expectBystanderReceives();
  });

  it("refuses a handshake without the rivulet.v1 subprotocol with 400", async () => {
    await expect(openRawSocket(server.url, { token, protocols: ["chat"] })).rejects.toMatchObject({ status: 400 });
    await expect(openRawSocket(server.url, { token, protocols: [] })).rejects.toMatchObject({ status: 400 });
  });

  it("ends calls without credentials with unauthenticated; per-call headers and the handshake's cookie or header count", async () => {
    const anonymous = await openRawSocket(server.url);
    anonymous.call(1, echo, EchoRequestSchema, { text: "who am I" });
    expect((await anonymous.until(1, EchoResponseSchema)).error).toEqual({
      code: "unauthenticated",
      message: "missing credentials: send Authorization: Bearer <token>",
    });
    anonymous.call(2, echo, EchoRequestSchema, { text: "bad token" }, { authorization: "Bearer not-a-token" });
    expect((await anonymous.until(2, EchoResponseSchema)).error?.code).toBe("unauthenticated");
    anonymous.call(3, echo, EchoRequestSchema, { text: "per call" }, { authorization: `Bearer ${token}` });
    expect((await anonymous.until(3, EchoResponseSchema)).messages.map((m) => m.text)).toEqual(["per call"]);
    anonymous.call(4, echo, EchoRequestSchema, { text: "bad header" }, { "bad header": "x" });
    expect((await anonymous.until(4, EchoResponseSchema)).error?.code).toBe("invalid_argument");
    anonymous.close();

    const handshakes: Record<string, string>[] = [{ cookie: `theme=dark; access_token=${token}` }, { authorization: `Bearer ${token}` }];
    for (const headers of handshakes) {
      const socket = await openRawSocket(server.url, { headers });
      socket.call(1, echo, EchoRequestSchema, { text: "handshake" });
      expect((await socket.until(1, EchoResponseSchema)).messages.map((m) => m.text)).toEqual(["handshake"]);
      socket.close();
    }
    await expectBystanderReceives();
  });

  it("ends calls with unauthenticated when the handshake's access_token cannot be a header value (LF, NUL, non-ASCII)", async () => {
    for (const bad of ["a\nb", "a\0b", "tokén"]) {
      const socket = await openRawSocket(server.url, { token: bad });
      socket.call(1, echo, EchoRequestSchema, { text: "x" });
      expect((await socket.until(1, EchoResponseSchema)).error?.code).toBe("unauthenticated");
      socket.close();
    }
    await expectBystanderReceives();
  });

  it("ends a request over --max-message-bytes with resource_exhausted", async () => {
    const small = await startTestServer({ extraServices: () => [counterService()], config: { maxMessageBytes: 1024 } });
    try {
      const socket = await openRawSocket(small.url, { token: await small.token("alice") });
      socket.call(1, echo, EchoRequestSchema, { text: "y".repeat(2000) });
      expect((await socket.until(1, EchoResponseSchema)).error?.code).toBe("resource_exhausted");
      socket.call(2, "rivulet.testing.v1.CounterService/Count", CountRequestSchema, { to: 2 });
      expect((await socket.until(2, CountResponseSchema)).messages.map((m) => m.value)).toEqual([1, 2]);
      socket.close();
    } finally {
      await small.close();
    }
  });

  it("ignores an empty frame (a kind this server does not know)", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.sendRaw(toBinary(ClientFrameSchema, create(ClientFrameSchema, {})));
    socket.call(1, echo, EchoRequestSchema, { text: "after empty" });
    expect((await socket.until(1, EchoResponseSchema)).messages.map((m) => m.text)).toEqual(["after empty"]);
    socket.close();
  });

  it("sends nothing for a call that was never made, when cancelled", async () => {
    const socket = await openRawSocket(server.url, { token });
    socket.send({ kind: { case: "cancel", value: { id: 99 } } });
    socket.send({ kind: { case: "ping", value: { nonce: 1n } } });
    expect((await socket.nextControl()).kind.case).toBe("pong");
    expect(socket.log.map((f) => f.kind.case)).toEqual(["pong"]);
    socket.close();
  });
});
