// Authorization is enforced in one place and so is the same on all five
// transports: one generated client per transport (Connect, gRPC, gRPC-Web,
// SSE and WebSocket, the last two through Rivulet's own Connect transports)
// runs the same attacks and must get the same outcome. Afterwards every
// stored notification is still there, and nobody saw another user's.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationService, type SubscribeResponse } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { createWebSocketTransport, type WebSocketTransport } from "../../src/client/websocket-transport.js";
import { bearer, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const titles = (responses: readonly SubscribeResponse[]) =>
  responses.map((r) => (r.event.case === "notification" ? `${r.event.value.userId}:${r.event.value.title}` : `<${r.event.case}>`));

/** The Connect code a call failed with, or "ok". */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "ok";
  } catch (error) {
    return Code[ConnectError.from(error).code];
  }
}

describe("authorization on every transport", () => {
  let server: TestServer;
  let publisher: ReturnType<typeof bearer>;
  let carolCursor: string;
  const sockets: WebSocketTransport[] = [];
  const transports: { name: string; transport: Transport }[] = [];

  beforeAll(async () => {
    server = await startTestServer();
    const connect = transportFor(server.url, "connect", "1.1");
    const ws = createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws` });
    sockets.push(ws);
    transports.push(
      { name: "Connect", transport: transportFor(server.url, "connect", "2") },
      { name: "gRPC", transport: transportFor(server.url, "grpc", "2") },
      { name: "gRPC-Web", transport: transportFor(server.url, "grpc-web", "1.1") },
      // SSE carries streams; its unary calls go over Connect, as a browser would.
      { name: "SSE", transport: createSseTransport({ baseUrl: server.url, unaryTransport: connect, backoff: { initialMs: 10, maxMs: 50 } }) },
      { name: "WebSocket", transport: ws },
    );
    publisher = bearer(await server.token("billing", ["publisher"]));
    const notify = createClient(NotificationService, connect);
    for (const user of ["alice", "bob", "carol"]) await notify.publish({ userId: user, kind: "k", title: `for ${user}` }, publisher);
    carolCursor = (await notify.publish({ userId: "carol", kind: "k", title: "carol's secret" }, publisher)).notification!.cursor;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await server.close();
  });

  const each = (name: string, body: (notify: Client<typeof NotificationService>, transport: Transport) => Promise<void>) =>
    it.each(["Connect", "gRPC", "gRPC-Web", "SSE", "WebSocket"])(`${name} (%s)`, async (transportName) => {
      const { transport } = transports.find((t) => t.name === transportName)!;
      await body(createClient(NotificationService, transport), transport);
    });

  each("user B subscribing gets B's notifications only: the user comes from the token", async (notify) => {
    const bob = bearer(await server.token("bob"));
    expect(titles(await take(notify.subscribe({ history: 10 }, bob), 1))).toEqual(["bob:for bob"]);
  });

  each("user B resuming with a cursor of user C's notifications gets invalid_argument and nothing of C's", async (notify) => {
    const bob = bearer(await server.token("bob"));
    expect(await outcome(() => take(notify.subscribe({ cursor: carolCursor }, bob), 1))).toBe("InvalidArgument");
  });

  each("publishing without the publisher role gets permission_denied", async (notify) => {
    const mallory = bearer(await server.token("mallory"));
    expect(await outcome(() => notify.publish({ userId: "alice", kind: "spam", title: "click here" }, mallory))).toBe("PermissionDenied");
  });

  each("no token gets unauthenticated", async (notify) => {
    expect(await outcome(() => take(notify.subscribe({ history: 1 }), 1))).toBe("Unauthenticated");
  });

  each("a job report without the worker role, on someone else's job, gets permission_denied", async (_notify, transport) => {
    const progress = createClient(ProgressService, transport);
    const owner = bearer(await server.token("owner"));
    const { job } = await createClient(ProgressService, transportFor(server.url, "connect", "1.1")).start({ kind: "external" }, owner);
    const stranger = bearer(await server.token("stranger"));
    expect(await outcome(() => progress.report({ jobId: job!.id, fraction: 0.5 }, stranger))).toBe("PermissionDenied");
    expect(await outcome(() => take(progress.watch({ jobId: job!.id }, stranger), 1))).toBe("PermissionDenied");
  });

  each("a stream whose token expires ends with unauthenticated after what it was sent", async (notify) => {
    // One to two seconds of life (`exp` counts whole seconds).
    const dave = bearer(await server.token("dave", [], 2));
    await notify.publish({ userId: "dave", kind: "k", title: "before expiry" }, publisher);
    const received: SubscribeResponse[] = [];
    const code = await outcome(async () => {
      for await (const response of notify.subscribe({ history: 1 }, dave)) received.push(response);
    });
    expect(code).toBe("Unauthenticated");
    expect(titles(received).at(-1)).toBe("dave:before expiry");
  });

  it("lost nothing: every user still has exactly their notifications, in order", async () => {
    const notify = createClient(NotificationService, transportFor(server.url, "connect", "2"));
    expect(titles(await take(notify.subscribe({ history: 10 }, bearer(await server.token("alice"))), 1))).toEqual(["alice:for alice"]);
    expect(titles(await take(notify.subscribe({ history: 10 }, bearer(await server.token("carol"))), 2))).toEqual(["carol:for carol", "carol:carol's secret"]);
  });
});
