// HTTP-level limits, with raw sockets and node:http2 sessions where a
// well-behaved client cannot misbehave: header floods, slow or silent
// clients, a gzip bomb, and HTTP/2 rapid reset. After each, the server
// still serves other clients.
import { gzipSync } from "node:zlib";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { createTestCertificate } from "../helpers/tls.js";

/** Sends raw bytes on a fresh connection; resolves with everything the server wrote before closing. */
function raw(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.write(request);
  });
}

/** Waits until the condition holds, checking every 10 ms, for at most `withinMs` (a bound for a loaded machine, not a speed claim). */
async function until(condition: () => Promise<boolean>, withinMs = 20_000): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error("condition not reached");
}

/** A request head with `count` extra headers. */
function headRequest(path: string, count: number, extra = ""): string {
  const headers = Array.from({ length: count }, (_, i) => `x-h${i}: v\r\n`).join("");
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}${headers}Connection: close\r\n\r\n`;
}

describe("HTTP limits", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({
      config: { headersTimeoutMs: 500, requestTimeoutMs: 1000, keepaliveMs: 250, maxHeaders: 100, maxMessageBytes: 64 * 1024, idleTimeoutMs: 1000 },
    });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  /** The server still answers a real client: a Send and a Subscribe that sees it. */
  async function stillServes(): Promise<void> {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const sent = await chat.send({ room: "limits", text: "still here" }, bearer(token));
    const [event] = await take(chat.subscribe({ room: "limits", history: 1 }, bearer(token)), 1);
    expect(event?.cursor).toBe(sent.message?.cursor);
  }

  it("answers 431 to 2,000 headers on a WebSocket upgrade request", async () => {
    const response = await raw(
      server.port,
      headRequest(
        "/ws",
        2000,
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".replace("Connection: close", ""),
      ),
    );
    expect(response).toMatch(/^HTTP\/1\.1 431 /);
    await stillServes();
  });

  it("answers 431 to more headers than allowed on a plain request, and serves the limit itself", async () => {
    expect(await raw(server.port, headRequest("/healthz", 101))).toMatch(/^HTTP\/1\.1 431 /);
    // 100 allowed: Host, Connection and 98 more.
    expect(await raw(server.port, headRequest("/healthz", 98))).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("refuses too many headers on HTTP/2 and keeps the connection's other streams working", async () => {
    const session = http2.connect(server.url);
    try {
      const headers: http2.OutgoingHttpHeaders = { ":path": "/healthz" };
      for (let i = 0; i < 200; i++) headers[`x-h${i}`] = "v";
      const refused = await new Promise<string>((resolve) => {
        const stream = session.request(headers);
        stream.on("response", (h) => resolve(String(h[":status"])));
        stream.on("error", (error: Error & { code?: string }) => resolve(error.code ?? error.message));
        stream.on("close", () => resolve(`closed ${stream.rstCode}`));
        stream.resume();
      });
      // nghttp2 refuses the header block: the stream is reset, the session lives on.
      expect(refused).toBe("ERR_HTTP2_STREAM_ERROR");
      await stillServes();
    } finally {
      session.destroy();
    }
  });

  it("cancels an HTTP/2 stream whose request body never ends, and keeps the session's other streams", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/rivulet.chat.v1.ChatService/Send",
        "content-type": "application/json",
        authorization: `Bearer ${token}`,
      });
      stream.on("error", () => undefined);
      stream.write('{"room":"limits",'); // and never the rest
      const rstCode = await new Promise<number>((resolve) => stream.on("close", () => resolve(stream.rstCode ?? -1)));
      expect(rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
      const status = await new Promise<number>((resolve, reject) => {
        const healthz = session.request({ ":path": "/healthz" });
        healthz.on("response", (headers) => resolve(Number(headers[":status"])));
        healthz.on("error", reject);
        healthz.resume();
      });
      expect(status).toBe(200);
    } finally {
      session.destroy();
    }
  });

  it("times only the request: an SSE stream over HTTP/2 lives on past --request-timeout", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    try {
      const message = encodeURIComponent(JSON.stringify({ room: "limits-long" }));
      const stream = session.request({ ":path": `/sse/rivulet.chat.v1.ChatService/Subscribe?message=${message}`, authorization: `Bearer ${token}` });
      let closed = false;
      stream.on("close", () => (closed = true));
      // Six keep-alive comments, 250 ms apart: well past the 1 s request timeout.
      await new Promise<void>((resolve) => {
        let comments = 0;
        stream.on("data", (chunk: Buffer) => {
          comments += chunk
            .toString()
            .split("\n")
            .filter((line) => line.startsWith(":")).length;
          if (comments >= 6) resolve();
        });
      });
      expect(closed).toBe(false);
    } finally {
      session.destroy();
    }
  });

  it("closes a connection whose headers never finish (slowloris)", async () => {
    const response = await raw(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
    await stillServes();
  });

  it("closes a connection that never sends a byte", async () => {
    expect(await raw(server.port, "")).toBe("");
  });

  it("refuses a gzip bomb: the limit counts decompressed bytes", async () => {
    // 16 MiB of JSON that gzips to about 16 KiB.
    const body = gzipSync(Buffer.from(JSON.stringify({ room: "limits", text: "a".repeat(16 * 1024 * 1024) })));
    expect(body.length).toBeLessThan(64 * 1024);
    const response = await fetch(`${server.url}/rivulet.chat.v1.ChatService/Send`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${token}` },
      body,
    });
    expect(response.status).toBe(429);
    expect(await response.json()).toMatchObject({ code: "resource_exhausted" });
    await stillServes();
  });

  it("survives HTTP/2 rapid reset: thousands of streams opened and cancelled at once, and frees the session", async () => {
    // Earlier tests' sessions close after --idle-timeout: counting from none, one closing mid-test cannot pass for ours.
    await until(async () => (await http2Connections()) === 0);
    const session = http2.connect(server.url);
    await new Promise<void>((resolve) => session.once("connect", () => resolve()));
    session.on("error", () => undefined);
    await until(async () => (await http2Connections()) === 1);
    for (let i = 0; i < 5000 && !session.destroyed && !session.closed; i++) {
      const stream = session.request({
        ":method": "POST",
        ":path": "/rivulet.chat.v1.ChatService/Subscribe",
        "content-type": "application/connect+json",
        authorization: `Bearer ${token}`,
      });
      stream.on("error", () => undefined);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
    session.destroy();
    await until(async () => (await http2Connections()) === 0);
    await stillServes();
  }, 60_000);

  /** The server's own count of open HTTP/2 connections, from /metrics. */
  async function http2Connections(): Promise<number> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return Number(/^rivulet_connections\{transport="http2"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  }
});

describe("HTTP limits over TLS (HTTP/1.1 served by the HTTP/2 server)", () => {
  let server: TestServer;
  beforeAll(async () => {
    const { certFile, keyFile } = createTestCertificate();
    server = await startTestServer({ config: { tlsCert: certFile, tlsKey: keyFile, headersTimeoutMs: 500, maxHeaders: 100 } });
  });
  afterAll(() => server.close());

  /** Like `raw`, over TLS with ALPN http/1.1. */
  function rawTls(request: string, handshake = true): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = handshake
        ? tls.connect({ port: server.port, host: "127.0.0.1", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => socket.write(request))
        : net.connect(server.port, "127.0.0.1");
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("error", reject);
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    });
  }

  it("answers 408 to headers that never finish", async () => {
    expect(await rawTls("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("closes a connection that never starts its TLS handshake", async () => {
    expect(await rawTls("", false)).toBe("");
  });

  it("answers 431 to more headers than allowed, and 200 at the limit", async () => {
    expect(await rawTls(headRequest("/healthz", 101))).toMatch(/^HTTP\/1\.1 431 /);
    expect(await rawTls(headRequest("/healthz", 98))).toMatch(/^HTTP\/1\.1 200 /);
  });
});
