// Compressed request bodies that do not decompress: the client's fault, so
// invalid_argument, whether the compressed stream is corrupt or merely cut
// short. Raw requests (no generated client sends a broken body) for unary and
// server-streaming methods over Connect, gRPC and gRPC-Web.
import http2 from "node:http2";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SendRequestSchema, SubscribeRequestSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

type Encoding = "gzip" | "br";
type Damage = "truncated" | "corrupt";

const methods = {
  unary: { path: "/rivulet.chat.v1.ChatService/Send", message: toBinary(SendRequestSchema, create(SendRequestSchema, { room: "compressed", text: "hello" })) },
  streaming: {
    path: "/rivulet.chat.v1.ChatService/Subscribe",
    message: toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { room: "compressed" })),
  },
} as const;

/** The message compressed, then damaged: cut in half (a prefix: nothing in it is wrong, it just ends early), or its bytes after the header flipped. */
function damaged(message: Uint8Array, encoding: Encoding, damage: Damage): Buffer {
  const compressed = encoding === "gzip" ? gzipSync(message) : brotliCompressSync(message);
  if (damage === "truncated") return compressed.subarray(0, Math.ceil(compressed.length / 2));
  const corrupt = Buffer.from(compressed);
  for (let i = 3; i < corrupt.length; i++) corrupt[i] = corrupt[i]! ^ 0xff;
  return corrupt;
}

/** A 5-byte-prefixed envelope with the compressed flag. */
function compressedEnvelope(payload: Uint8Array): Buffer {
  const envelope = Buffer.alloc(5 + payload.length);
  envelope[0] = 1;
  envelope.writeUInt32BE(payload.length, 1);
  envelope.set(payload, 5);
  return envelope;
}

const cases = (["unary", "streaming"] as const).flatMap((kind) =>
  (["gzip", "br"] as const).flatMap((encoding) => (["truncated", "corrupt"] as const).map((damage) => ({ kind, encoding, damage }))),
);

describe("compressed request bodies that do not decompress", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer();
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it.each(cases)("Connect, $kind, $encoding, $damage → invalid_argument", async ({ kind, encoding, damage }) => {
    const { path, message } = methods[kind];
    const body = damaged(message, encoding, damage);
    // Connect unary compresses the whole body (Content-Encoding); streams compress each envelope.
    const headers: Record<string, string> =
      kind === "unary"
        ? { "content-type": "application/proto", "content-encoding": encoding }
        : { "content-type": "application/connect+proto", "connect-content-encoding": encoding };
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { ...headers, authorization: `Bearer ${token}` },
      body: Uint8Array.from(kind === "unary" ? body : compressedEnvelope(body)),
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    if (kind === "unary") {
      expect(response.status).toBe(400);
      expect(JSON.parse(bytes.toString())).toMatchObject({ code: "invalid_argument", message: "decompression failed" });
    } else {
      expect(response.status).toBe(200);
      expect(bytes[0]).toBe(2); // the end-stream flag
      expect(JSON.parse(bytes.subarray(5).toString())).toEqual({ error: { code: "invalid_argument", message: "decompression failed" } });
    }
  });

  it.each(cases)("gRPC over h2c, $kind, $encoding, $damage → status 3", async ({ kind, encoding, damage }) => {
    const { path, message } = methods[kind];
    expect(await rawGrpc(path, encoding, compressedEnvelope(damaged(message, encoding, damage)))).toBe("3 decompression failed");
  });

  it.each(cases)("gRPC-Web, $kind, $encoding, $damage → status 3", async ({ kind, encoding, damage }) => {
    const { path, message } = methods[kind];
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "grpc-encoding": encoding, authorization: `Bearer ${token}` },
      body: Uint8Array.from(compressedEnvelope(damaged(message, encoding, damage))),
    });
    expect(response.status).toBe(200);
    const text = Buffer.from(await response.arrayBuffer()).toString("latin1");
    expect(text).toMatch(/grpc-status: ?3\r\n/);
    expect(text).toMatch(/grpc-message: ?decompression%20failed\r\n/);
  });

  /** A gRPC call over h2c with a raw body: the grpc-status and grpc-message of its trailers. */
  function rawGrpc(path: string, encoding: Encoding, body: Uint8Array): Promise<string> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(server.url);
      session.on("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc+proto",
        "grpc-encoding": encoding,
        te: "trailers",
        authorization: `Bearer ${token}`,
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
});
