import { once } from "node:events";
import http2 from "node:http2";
import { gunzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Binary Connect and gRPC server streams are written by Rivulet's own stream
 * writer (src/bridge/rpc/stream-bridge.ts); JSON, gRPC-Web and compressed
 * requests go to connect-node. Either way a client must see the same
 * messages, order and codes.
 */
describe("Connect and gRPC server streams: the direct writer and connect-node agree", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer();
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  async function deliveries(transport: string): Promise<number> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(new RegExp(`rivulet_deliveries_total\\{transport="${transport}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  }

  const cases = [
    { name: "Connect binary over HTTP/1.1", direct: "connect", transport: () => transportFor(server.url, "connect", "1.1") },
    { name: "Connect binary over h2c", direct: "connect", transport: () => transportFor(server.url, "connect", "2") },
    { name: "gRPC over h2c", direct: "grpc", transport: () => transportFor(server.url, "grpc", "2") },
    {
      name: "Connect JSON over h2c",
      direct: undefined,
      transport: () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: false }),
    },
    { name: "gRPC-Web over h2c", direct: undefined, transport: () => transportFor(server.url, "grpc-web", "2") },
    {
      name: "Connect binary with gzip requests",
      direct: undefined,
      transport: () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", sendCompression: compressionGzip, compressMinBytes: 0 }),
    },
  ] as const;

  it.each(cases)("$name: history then live messages, in order, with cursors", async ({ name, direct, transport }) => {
    const room = `direct-${name.replace(/[^a-z0-9]+/gi, "-")}`;
    const chat = clientFor(ChatService, transport());
    const sender = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    for (const text of ["one", "two"]) await sender.send({ room, text }, bearer(token));
    const before = { connect: await deliveries("connect"), grpc: await deliveries("grpc") };

    const stream = chat.subscribe({ room, history: 2 }, bearer(token))[Symbol.asyncIterator]();
    const texts: string[] = [];
    const cursors: string[] = [];
    const next = async () => {
      const { value } = await stream.next();
      if (value?.event.case === "message") texts.push(value.event.value.text);
      cursors.push(value?.cursor ?? "");
    };
    await next();
    await next();
    await sender.send({ room, text: "three" }, bearer(token));
    await next();
    await stream.return?.();
    expect(texts).toEqual(["one", "two", "three"]);
    expect(new Set(cursors).size).toBe(3);

    const after = { connect: await deliveries("connect"), grpc: await deliveries("grpc") };
    if (direct === "connect") expect(after).toEqual({ connect: before.connect + 3, grpc: before.grpc });
    else if (direct === "grpc") expect(after).toEqual({ connect: before.connect, grpc: before.grpc + 3 });
    else expect(after).toEqual(before);
  });

  it.each(cases)("$name: a message over 1 KiB arrives whole (compressed when the client accepts gzip or br)", async ({ name, transport }) => {
    const room = `big-${name.replace(/[^a-z0-9]+/gi, "-")}`;
    const text = "é".repeat(1500); // 3,000 bytes of UTF-8
    const chat = clientFor(ChatService, transport());
    await chat.send({ room, text }, bearer(token));
    const [response] = await take(chat.subscribe({ room, history: 1 }, bearer(token)), 1);
    expect(response?.event.case === "message" && response.event.value.text).toBe(text);
  });

  it("compresses a large message once for gRPC clients that accept gzip, and says so in grpc-encoding", async () => {
    const room = "big-raw";
    await clientFor(ChatService, transportFor(server.url, "connect", "2")).send({ room, text: "x".repeat(3000) }, bearer(token));
    const session = http2.connect(server.url);
    const request = session.request({
      ":method": "POST",
      ":path": "/rivulet.chat.v1.ChatService/Subscribe",
      "content-type": "application/grpc+proto",
      "grpc-accept-encoding": "gzip",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    request.end(envelope(0, toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { room, history: 1 }))));
    const [headers] = (await once(request, "response")) as [http2.IncomingHttpHeaders];
    expect(headers["grpc-encoding"]).toBe("gzip");
    let received = Buffer.alloc(0);
    for await (const chunk of request as AsyncIterable<Buffer>) {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 5 && received.length >= 5 + received.readUInt32BE(1)) break;
    }
    request.close();
    session.close();
    expect(received[0]).toBe(1); // the compressed flag
    const message = fromBinary(SubscribeResponseSchema, gunzipSync(received.subarray(5, 5 + received.readUInt32BE(1))));
    expect(message.event.case === "message" && message.event.value.text).toBe("x".repeat(3000));
  });

  it.each(cases)("$name: the same error codes and messages", async ({ transport }) => {
    const chat = clientFor(ChatService, transport());
    const failure = async (stream: AsyncIterable<unknown>) => {
      try {
        await take(stream, 1);
        return "no error";
      } catch (error) {
        const e = ConnectError.from(error);
        return `${Code[e.code]}: ${e.rawMessage}`;
      }
    };
    expect(await failure(chat.subscribe({ room: "a/b" }, bearer(token)))).toBe(
      "InvalidArgument: room may contain only letters, digits, '-', '_', '.', ':', '#', ',' and '@'",
    );
    expect(await failure(chat.subscribe({ room: "r" }))).toBe("Unauthenticated: missing credentials: send Authorization: Bearer <token>");
    expect(await failure(chat.subscribe({ room: "quiet" }, { ...bearer(token), timeoutMs: 150 }))).toMatch(/^DeadlineExceeded: /);
    expect(await failure(chat.subscribe({ room: "r", cursor: "not-a-cursor" }, bearer(token)))).toMatch(/^InvalidArgument: /);
  });

  /** A gRPC call over h2c with a raw body: the grpc-status and grpc-message of its trailers. */
  function rawGrpc(body: Uint8Array, headers: Record<string, string> = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(server.url);
      session.on("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": "/rivulet.chat.v1.ChatService/Subscribe",
        "content-type": "application/grpc+proto",
        te: "trailers",
        authorization: `Bearer ${token}`,
        ...headers,
      });
      let status = "-";
      stream.on("trailers", (trailers) => (status = `${String(trailers["grpc-status"])} ${decodeURIComponent(String(trailers["grpc-message"] ?? ""))}`));
      stream.on("error", reject);
      stream.on("close", () => {
        session.close();
        resolve(status);
      });
      stream.resume();
      stream.end(body);
    });
  }

  /** A Connect streaming call over HTTP/1.1 with a raw body: the end-of-stream JSON. */
  async function rawConnect(body: Uint8Array): Promise<unknown> {
    const response = await fetch(`${server.url}/rivulet.chat.v1.ChatService/Subscribe`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", authorization: `Bearer ${token}` },
      body: Uint8Array.from(body),
    });
    expect(response.status).toBe(200);
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes[0]).toBe(2); // the end-stream flag
    return JSON.parse(bytes.subarray(5).toString());
  }

  const envelope = (flags: number, message: Uint8Array, length = message.length) => {
    const bytes = Buffer.alloc(5 + message.length);
    bytes[0] = flags;
    bytes.writeUInt32BE(length, 1);
    bytes.set(message, 5);
    return bytes;
  };
  const room = new Uint8Array([0x0a, 0x01, 0x72]); // SubscribeRequest{room: "r"}

  it.each([
    ["no request message", new Uint8Array(), "12 protocol error: missing input message for server_streaming method"],
    [
      "two request messages",
      Buffer.concat([envelope(0, room), envelope(0, room)]),
      "12 protocol error: received extra input message for server_streaming method",
    ],
    ["a frame shorter than its length says", envelope(0, room, 9), "3 protocol error: incomplete envelope"],
    ["a compressed frame without grpc-encoding", envelope(1, room), "13 received compressed envelope, but do not know how to decompress"],
    ["malformed Protobuf", envelope(0, new Uint8Array([0x0a, 0xff, 0xff])), "13 parse binary: premature EOF"],
  ])("a raw gRPC request with %s → %s", async (_name, body, expected) => {
    expect(await rawGrpc(body)).toBe(expected);
  });

  it("a bad gRPC timeout header → invalid_argument, as connect-node says it", async () => {
    expect(await rawGrpc(envelope(0, room), { "grpc-timeout": "soon" })).toBe("3 protocol error: invalid grpc timeout value: soon");
  });

  it("a raw Connect request with two messages → unimplemented in the end-of-stream message", async () => {
    expect(await rawConnect(Buffer.concat([envelope(0, room), envelope(0, room)]))).toEqual({
      error: { code: "unimplemented", message: "protocol error: received extra input message for server_streaming method" },
    });
  });
});
