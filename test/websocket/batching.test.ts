// Frames queued for one socket in the same event-loop turn reach the kernel in
// one write: the socket's batched writer (src/http/batched-writer.ts) hands
// the whole batch to the TCP socket as one Buffer. Counted on the server's own
// socket (through the bridge's diagnostics channel), by wrapping its Writable
// write hooks.
import { subscribe as subscribeChannel, unsubscribe as unsubscribeChannel } from "node:diagnostics_channel";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CountRequestSchema, CountResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { websocketOpenChannel } from "../../src/bridge/websocket/bridge.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openRawSocket } from "./raw-socket.js";

/** The Writable hooks net.Socket implements (documented for stream implementers). */
interface WriteHooks {
  _write(...args: unknown[]): void;
  _writev?(...args: unknown[]): void;
}

describe("batched writes", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ extraServices: () => [counterService()] });
  });
  afterAll(() => server.close());

  it("writes a burst of a call's frames with a handful of system writes, not one per frame", async () => {
    let transport: Duplex | undefined;
    const onOpen = (message: unknown) => (transport = (message as { transport: Duplex }).transport);
    subscribeChannel(websocketOpenChannel.name, onOpen);
    const socket = await openRawSocket(server.url, { token: await server.token("alice") }).finally(() => unsubscribeChannel(websocketOpenChannel.name, onOpen));
    const hooks = transport as unknown as WriteHooks;
    let writes = 0;
    const write = hooks._write.bind(hooks);
    hooks._write = (...args) => {
      writes++;
      write(...args);
    };
    const writev = hooks._writev?.bind(hooks);
    if (writev) {
      hooks._writev = (...args) => {
        writes++;
        writev(...args);
      };
    }

    const count = 500;
    socket.call(1, "rivulet.testing.v1.CounterService/Count", CountRequestSchema, { to: count });
    const result = await socket.until(1, CountResponseSchema);
    expect(result.messages.map((m) => m.value)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // 501 frames (500 messages and the end); one write each would be 501.
    expect(writes).toBeLessThan(count / 10);
    socket.close();
  });
});
