// wss:// — the WebSocket over TLS (ALPN http/1.1) on the same port as h2 and Connect.
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { collect } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { createTestCertificate } from "../helpers/tls.js";

/** ws's WebSocket trusting the test's self-signed certificate. */
class TestWebSocket extends WebSocket {
  constructor(url: string, protocols: string[]) {
    super(url, protocols, { rejectUnauthorized: false });
  }
}

describe("the WebSocket over TLS", () => {
  let server: TestServer;
  let transport: WebSocketTransport;
  beforeAll(async () => {
    const { certFile, keyFile } = createTestCertificate();
    server = await startTestServer({ extraServices: () => [counterService()], config: { tlsCert: certFile, tlsKey: keyFile } });
    expect(server.url).toMatch(/^https:/);
    transport = createWebSocketTransport({
      url: `${server.url.replace(/^https/, "wss")}/ws?access_token=${await server.token("alice")}`,
      WebSocket: TestWebSocket,
    });
  });
  afterAll(async () => {
    transport?.close();
    await server?.close();
  });

  it("serves unary and streaming calls on wss://", async () => {
    const counter = createClient(CounterService, transport);
    expect((await counter.echo({ text: "over TLS" })).text).toBe("over TLS");
    expect((await collect(counter.count({ to: 3 }))).map((r) => r.value)).toEqual([1, 2, 3]);
  });
});
