// A resumable stream that the server ends with resource_exhausted (a
// subscriber that fell behind) or unavailable is continued by the typed
// transport from its last cursor, transparently. The server here mounts its
// own implementation of the test-only CounterService that fails on cue.
import { Code, ConnectError, createClient, type ServiceImpl } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { collect } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("the typed transport continues a resumable stream the server ended", () => {
  let server: TestServer;
  let transport: WebSocketTransport;
  /** The cursor of every Count call the server received, in order. */
  const cursors: string[] = [];
  /** Failures to end the next calls with, after their third value. */
  const failures: ConnectError[] = [];

  beforeAll(async () => {
    const impl: Partial<ServiceImpl<typeof CounterService>> = {
      async *count(request) {
        cursors.push(request.cursor);
        const failure = failures.shift();
        const after = request.cursor === "" ? 0 : Number(request.cursor);
        for (let value = after + 1; value <= request.to; value++) {
          if (failure && value > after + 3) throw failure;
          yield { value, cursor: String(value) };
        }
      },
    };
    server = await startTestServer({ extraServices: () => [{ service: CounterService, impl }] });
    transport = createWebSocketTransport({
      url: `${server.url.replace(/^http/, "ws")}/ws?access_token=${await server.token("alice")}`,
      backoffInitialMs: 10,
    });
  });
  afterAll(async () => {
    transport.close();
    await server.close();
  });

  it("resumes after resource_exhausted and unavailable, with every value once", async () => {
    failures.push(
      new ConnectError("subscriber too slow: buffer full; resume from the last cursor", Code.ResourceExhausted),
      new ConnectError("server is shutting down; reconnect", Code.Unavailable),
    );
    const values = (await collect(createClient(CounterService, transport).count({ to: 10 }))).map((r) => r.value);
    expect(values).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(cursors).toEqual(["", "3", "6"]);
  });

  it("ends with any other error", async () => {
    cursors.length = 0;
    failures.push(new ConnectError("no", Code.PermissionDenied));
    await expect(collect(createClient(CounterService, transport).count({ to: 10 }))).rejects.toMatchObject({ code: Code.PermissionDenied });
    expect(cursors).toEqual([""]);
  });
});
