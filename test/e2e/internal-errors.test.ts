// A bug's error never reaches a client: a plain Error thrown by a method
// arrives as `internal` / "internal error" on every transport, and its text
// goes to the server log only.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { createWebSocketTransport } from "../../src/client/websocket-transport.js";
import { allTransports, bearer } from "../helpers/clients.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("internal errors", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startTestServer({ extraServices: () => [counterService()] });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  it("reach Connect, gRPC and gRPC-Web clients on HTTP/1.1 and HTTP/2, and WebSocket clients, as internal with no detail", async () => {
    const ws = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws` });
    try {
      for (const { name, transport } of [...allTransports(server.url), { name: "WebSocket", transport: ws }]) {
        const error = await createClient(CounterService, transport)
          .echo({ text: "crash" }, bearer(token))
          .then(
            () => undefined,
            (reason: unknown) => ConnectError.from(reason),
          );
        expect({ name, code: error?.code, message: error?.rawMessage }).toEqual({ name, code: Code.Internal, message: "internal error" });
      }
    } finally {
      ws.close();
    }
  });
});
