import http2 from "node:http2";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, take, transportFor } from "../helpers/clients.js";
import { startTestServer, testSecret, type TestServer } from "../helpers/server.js";

/**
 * Bad input gets a documented Connect code; the server and other clients carry on.
 * A subscriber stays connected through every case and must still receive messages after.
 */
describe("bad input on Connect and gRPC", () => {
  let server: TestServer;
  let token: string;
  let bystander: AsyncIterator<SubscribeResponse>;
  beforeAll(async () => {
    server = await startTestServer({ config: { maxMessageBytes: 8192 } });
    token = await server.token("alice");
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    await chat.send({ room: "bystanders", text: "before" }, bearer(token));
    bystander = chat.subscribe({ room: "bystanders", history: 1 }, bearer(token))[Symbol.asyncIterator]();
    await bystander.next();
  });
  afterAll(async () => {
    await bystander.return?.();
    await server.close();
  });

  /** POSTs a Connect unary request with a raw body. */
  async function post(path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
      body,
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as { code?: string; message?: string }) : {} };
  }

  const send = "/rivulet.chat.v1.ChatService/Send";
  const sign = (claims: Record<string, unknown>, secret = testSecret, expiresIn: number | string = "1h") =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("alice").setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));

  it.each([
    ["malformed JSON", send, "{", {}, 400, "invalid_argument"],
    ["a wrong field type", send, JSON.stringify({ room: 5, text: "x" }), {}, 400, "invalid_argument"],
    ["an unknown field value type", send, JSON.stringify({ room: "r", text: ["x"] }), {}, 400, "invalid_argument"],
    ["an empty room", send, JSON.stringify({ room: "", text: "x" }), {}, 400, "invalid_argument"],
    ["a room with a slash", send, JSON.stringify({ room: "a/b", text: "x" }), {}, 400, "invalid_argument"],
    ["an empty text", send, JSON.stringify({ room: "r", text: "" }), {}, 400, "invalid_argument"],
    ["a whitespace-only text", send, JSON.stringify({ room: "r", text: " \t\n\u00a0" }), {}, 400, "invalid_argument"],
    ["a text over 4096 characters", send, JSON.stringify({ room: "r", text: "x".repeat(4097) }), {}, 400, "invalid_argument"],
    ["a message over the size limit", send, JSON.stringify({ room: "r", text: "x".repeat(9000) }), {}, 429, "resource_exhausted"],
    // connect-es (like grpc-go) reports an undecodable binary message as internal, "parse binary: ...".
    ["malformed Protobuf", send, new Uint8Array([0x0a, 0xff, 0xff]), { "content-type": "application/proto" }, 500, "internal"],
    ["an unsupported codec", send, "room: r", { "content-type": "application/xml" }, 415, undefined],
    ["an unknown method", "/rivulet.chat.v1.ChatService/Shout", "{}", {}, 404, undefined],
    ["an unknown service", "/rivulet.nope.v1.NopeService/Send", "{}", {}, 404, undefined],
    ["a missing token", send, JSON.stringify({ room: "r", text: "x" }), { authorization: "" }, 401, "unauthenticated"],
    ["a malformed token", send, JSON.stringify({ room: "r", text: "x" }), { authorization: "Bearer not.a.jwt" }, 401, "unauthenticated"],
    ["a non-bearer scheme", send, JSON.stringify({ room: "r", text: "x" }), { authorization: "Basic YWxpY2U6eA==" }, 401, "unauthenticated"],
  ] as const)("%s", async (_name, path, body, headers, status, code) => {
    const result = await post(path, body, headers);
    expect(result.status).toBe(status);
    if (code) expect(result.body.code).toBe(code);
  });

  it.each([
    ["an expired token", () => sign({ roles: [] }, testSecret, Math.floor(Date.now() / 1000) - 60), "token expired"],
    ["a token signed with another secret", () => sign({ roles: [] }, "another-secret-that-is-long-enough-123"), "invalid token"],
    [
      "an alg:none token",
      async () => `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "alice", exp: Math.floor(Date.now() / 1000) + 600 })}.`,
      "tokens signed with none are not accepted",
    ],
    [
      "a token without exp",
      () => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("alice").sign(new TextEncoder().encode(testSecret)),
      'token claim "exp" is not acceptable (missing)',
    ],
  ])("%s → unauthenticated over gRPC", async (_name, makeToken, message) => {
    const chat = clientFor(ChatService, transportFor(server.url, "grpc", "2"));
    await expect(chat.send({ room: "r", text: "x" }, bearer(await makeToken()))).rejects.toMatchObject({ code: 16, rawMessage: message });
  });

  /** A native gRPC call over h2c with a raw body; resolves with its HTTP status and grpc-status (trailers, or headers for trailers-only). */
  function rawGrpc(path: string, body: Uint8Array): Promise<string> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(server.url);
      session.on("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc+proto",
        te: "trailers",
        authorization: `Bearer ${token}`,
      });
      let status: string | undefined;
      let httpStatus = 0;
      stream.on("response", (headers) => {
        httpStatus = Number(headers[":status"]);
        status ??= headers["grpc-status"] as string | undefined;
      });
      stream.on("trailers", (trailers) => (status = trailers["grpc-status"] as string | undefined));
      stream.on("error", reject);
      stream.on("close", () => {
        session.close();
        resolve(`${httpStatus} ${status ?? "-"}`);
      });
      stream.resume();
      stream.end(body);
    });
  }

  it.each([
    // No route: HTTP 404, which gRPC clients read as UNIMPLEMENTED (gRPC's HTTP-to-status mapping).
    ["an unknown method", "/rivulet.chat.v1.ChatService/Shout", grpcWebFrame(new Uint8Array()), "404 -"],
    ["malformed Protobuf", "/rivulet.chat.v1.ChatService/Send", grpcWebFrame(new Uint8Array([0x0a, 0xff, 0xff])), "200 13"],
  ])("%s over native gRPC (h2c) → %s", async (_name, path, body, status) => {
    expect(await rawGrpc(path, body)).toBe(status);
  });

  /** One gRPC (and gRPC-Web) data frame: flag 0, big-endian length, `message`. */
  function grpcWebFrame(message: Uint8Array): Uint8Array<ArrayBuffer> {
    const frame = new Uint8Array(5 + message.length);
    new DataView(frame.buffer).setUint32(1, message.length);
    frame.set(message, 5);
    return frame;
  }

  it.each([
    // connect-es, like grpc-go, reports an undecodable message as internal.
    ["malformed Protobuf", "13", grpcWebFrame(new Uint8Array([0x0a, 0xff, 0xff]))],
    ["a frame shorter than its length says", "3", new Uint8Array([0, 0, 0, 0, 9, 0x0a])],
    // The gRPC spec: a compressed message with no (or an unknown) grpc-encoding is INTERNAL.
    ["a compressed frame without grpc-encoding", "13", new Uint8Array([1, 0, 0, 0, 1, 0x0a])],
  ])("%s over gRPC-Web → grpc-status %s, in the trailers", async (_name, status, body) => {
    const response = await fetch(`${server.url}/rivulet.chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", authorization: `Bearer ${token}` },
      body,
    });
    expect(response.status).toBe(200);
    const text = Buffer.from(await response.arrayBuffer()).toString("latin1");
    expect(text).toMatch(new RegExp(`grpc-status: ?${status}\r\n`));
  });

  it("a wrong HTTP verb (GET on a method that is not side-effect free) → 405", async () => {
    const response = await fetch(`${server.url}/rivulet.chat.v1.ChatService/Send?encoding=json&message=%7B%7D`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(405);
  });

  it("keeps serving: health, a send, and the bystander's live stream all still work", async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const chat = clientFor(ChatService, transportFor(server.url, "grpc", "2"));
    const next = bystander.next();
    await chat.send({ room: "bystanders", text: "after" }, bearer(token));
    const { value } = await next;
    expect(value?.event.case === "message" ? value.event.value.text : "").toBe("after");
    // Nothing stored was lost or added by the bad requests: the room holds exactly what was sent.
    const history = await take(chat.subscribe({ room: "bystanders", history: 10 }, bearer(token)), 2);
    expect(history.map((r) => (r.event.case === "message" ? r.event.value.text : ""))).toEqual(["before", "after"]);
  });
});

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}
