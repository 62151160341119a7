import http2 from "node:http2";
import https from "node:https";
import { create, toBinary } from "@bufbuild/protobuf";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { startServer } from "../../src/server.js";
import { CountRequestSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, testSecret, type TestServer } from "../helpers/server.js";
import { readSse, ssePath } from "../helpers/sse.js";
import { createTestCertificate } from "../helpers/tls.js";

const count = "rivulet.testing.v1.CounterService/Count";
const counted = (to: number, from = 1) =>
  Array.from({ length: to - from + 1 }, (_, i) => `id: ${from + i}\ndata: {"value":${from + i},"cursor":"${from + i}"}\n\n`).join("");

/**
 * The bridge is generic: rivulet.testing.v1.CounterService, a test-only proto
 * the bridge has never heard of, works over SSE (routes, JSON and binary
 * requests, cursors as ids, resume, end, 204) with no bridge change.
 */
describe("SSE serves any server-streaming method of the schema", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ extraServices: () => [counterService()] });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  it("streams a test-only method: retry first, one event per message with the cursor as id, then end", async () => {
    const response = await get(ssePath(count, { to: 3 }));
    expect(response.status).toBe(200);
    expect(Object.fromEntries(["content-type", "cache-control", "x-accel-buffering"].map((h) => [h, response.headers.get(h)]))).toEqual({
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    });
    expect(await response.text()).toBe(`retry: 2000\n\n${counted(3)}event: end\ndata: {}\n\n`);
  });

  it("resumes after Last-Event-ID, and answers 204 when the stream had already finished there", async () => {
    expect(await (await get(ssePath(count, { to: 3 }), { "last-event-id": "1" })).text()).toBe(`retry: 2000\n\n${counted(3, 2)}event: end\ndata: {}\n\n`);
    const finished = await get(ssePath(count, { to: 3 }), { "last-event-id": "3" });
    expect(finished.status).toBe(204);
    expect(await finished.text()).toBe("");
  });

  it("takes the request as Protobuf binary in base64url, as Connect GET sends it", async () => {
    const message = Buffer.from(toBinary(CountRequestSchema, create(CountRequestSchema, { to: 2 }))).toString("base64url");
    const response = await get(`/sse/${count}?encoding=proto&base64=1&message=${message}`);
    expect(await response.text()).toBe(`retry: 2000\n\n${counted(2)}event: end\ndata: {}\n\n`);
  });

  it("carries many SSE streams on one HTTP/2 (h2c) connection", async () => {
    const session = http2.connect(server.url);
    try {
      const streams = Array.from({ length: 20 }, (_, i) => h2Get(session, ssePath(count, { to: i + 1 }), token));
      const bodies = await Promise.all(streams);
      bodies.forEach((body, i) =>
        expect(body).toEqual({
          status: 200,
          contentType: "text/event-stream; charset=utf-8",
          text: `retry: 2000\n\n${counted(i + 1)}event: end\ndata: {}\n\n`,
        }),
      );
    } finally {
      session.close();
    }
  });
});

describe("SSE keep-alives and logs", () => {
  it("sends a keep-alive comment on a quiet stream, and keeps the query token out of the logs", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, new Writable({ write: (chunk: Buffer, _encoding, callback) => (lines.push(chunk.toString()), callback()) }));
    const config = { ...loadConfig([], {}), port: 0, host: "127.0.0.1", authSecret: testSecret, roomsDefault: "allow" as const, keepaliveMs: 100 };
    const server = await startServer({ config, logger });
    try {
      const token = await server.tokens.mint({ userId: "alice", roles: [], ttlSeconds: 60 });
      const response = await fetch(
        `http://127.0.0.1:${server.port}${ssePath("rivulet.chat.v1.ChatService/Subscribe", { room: "quiet" }, { access_token: token })}`,
      );
      const events = readSse(response);
      expect((await events.next()).value).toEqual({ event: "retry", data: "2000" });
      expect((await events.next()).value).toEqual({ event: "comment", data: "keep-alive" });
      await events.return(undefined);
      const opened = lines.find((line) => line.includes("sse stream opened"));
      expect(opened).toContain("access_token=[REDACTED]");
      expect(lines.join("")).not.toContain(token);
    } finally {
      await server.close();
    }
  });
});

describe("SSE over TLS", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    const { certFile, keyFile } = createTestCertificate();
    server = await startTestServer({ config: { tlsCert: certFile, tlsKey: keyFile }, extraServices: () => [counterService()] });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it("streams over HTTP/2 (ALPN h2), several streams on one connection", async () => {
    const session = http2.connect(server.url, { rejectUnauthorized: false });
    try {
      const bodies = await Promise.all([1, 2, 3].map((to) => h2Get(session, ssePath(count, { to }), token)));
      expect(bodies.map((b) => b.text)).toEqual([1, 2, 3].map((to) => `retry: 2000\n\n${counted(to)}event: end\ndata: {}\n\n`));
      expect(session.alpnProtocol).toBe("h2");
    } finally {
      session.close();
    }
  });

  it("streams over HTTP/1.1 (ALPN http/1.1)", async () => {
    const text = await new Promise<string>((resolve, reject) => {
      https
        .get(`${server.url}${ssePath(count, { to: 2 })}`, { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
          let body = "";
          res
            .setEncoding("utf8")
            .on("data", (chunk: string) => (body += chunk))
            .on("end", () => resolve(body));
        })
        .on("error", reject);
    });
    expect(text).toBe(`retry: 2000\n\n${counted(2)}event: end\ndata: {}\n\n`);
  });

  it("resumes over TLS with Last-Event-ID, read by a raw reader", async () => {
    const session = http2.connect(server.url, { rejectUnauthorized: false });
    try {
      expect((await h2Get(session, ssePath(count, { to: 4 }), token, { "last-event-id": "2" })).text).toBe(
        `retry: 2000\n\n${counted(4, 3)}event: end\ndata: {}\n\n`,
      );
      expect((await h2Get(session, ssePath(count, { to: 4 }), token, { "last-event-id": "4" })).status).toBe(204);
    } finally {
      session.close();
    }
  });
});

/** One GET on an HTTP/2 session, read to the end. */
function h2Get(session: http2.ClientHttp2Session, path: string, token: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; contentType: string | undefined; text: string }>((resolve, reject) => {
    const stream = session.request({ ":method": "GET", ":path": path, authorization: `Bearer ${token}`, ...headers });
    let status = 0;
    let contentType: string | undefined;
    let text = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      contentType = h["content-type"];
    });
    stream.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
    stream.on("end", () => resolve({ status, contentType, text }));
    stream.on("error", reject);
  });
}
