// Room access as a plain SSE reader sees it (no client library): a refused
// room before the stream opens, a stream ended by a withdrawn grant, and a
// backend that cannot answer, each as docs/protocol.md ("Refused requests",
// "Transient failures", "Response") says they are sent.
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { AuthorizerBackend } from "../helpers/authorizer-backend.js";
import { bearer, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { nextEvents, readSse, ssePath } from "../helpers/sse.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";

describe("room access on raw SSE", () => {
  let backend: AuthorizerBackend;
  let server: TestServer;
  let writer: ReturnType<typeof bearer>;

  beforeAll(async () => {
    backend = await AuthorizerBackend.start();
    server = await startTestServer({ config: { roomsDefault: "deny", authorizeUrl: backend.url, authorizeTimeoutMs: 1000 } });
    writer = bearer(await server.server.tokens.mint({ userId: "writer", rooms: { "*": ["read", "write"] } }));
  });
  afterAll(async () => {
    await server.close();
    await backend.close();
  });

  const get = async (path: string, token: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, { headers: { accept: "text/event-stream", authorization: `Bearer ${token}`, ...headers } });

  it("a refused room is 403 with the Connect error JSON, before the stream opens", async () => {
    for (const room of ["dm#alice,bob", "lobby", "private:nobody"]) {
      const response = await get(ssePath(subscribe, { room, history: 1 }), await server.token("carol"));
      expect(response.status).toBe(403);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ code: "permission_denied", message: `not allowed to read room "${room}"` });
    }
  });

  it("a stream whose grant is withdrawn ends with event: error permission_denied; its Last-Event-ID resume is 403", async () => {
    const room = "private:sse";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 1 });
    const sent = await createClient(ChatService, transportFor(server.url, "connect", "1.1")).send({ room, text: "hello" }, writer);
    const token = await server.token("alice");
    const response = await get(ssePath(subscribe, { room, history: 1 }), token);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = readSse(response);
    const [message] = await nextEvents(events, 1);
    expect(message!.event).toBeUndefined();
    expect(message!.id).toBe(sent.message!.cursor);
    backend.decide("alice", room, "read", { allowed: false, ttlSeconds: 60 });
    const [error] = await nextEvents(events, 1);
    expect(error!.event).toBe("error");
    expect(JSON.parse(error!.data)).toEqual({ code: "permission_denied", message: `not allowed to read room "${room}"` });
    // The server then closes the response.
    expect(await nextEvents(events, 1)).toEqual([]);
    const resumed = await get(ssePath(subscribe, { room }), token, { "last-event-id": message!.id! });
    expect(resumed.status).toBe(403);
    expect(await resumed.json()).toEqual({ code: "permission_denied", message: `not allowed to read room "${room}"` });
  });

  it("a backend that fails is a transient failure: 200, retry:, event: error unavailable, never a message", async () => {
    const room = "private:sse-down";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 60 });
    await createClient(ChatService, transportFor(server.url, "connect", "1.1")).send({ room, text: "secret" }, writer);
    for (const mode of ["fail", "hang"] as const) {
      backend.mode = mode;
      try {
        const response = await get(ssePath(subscribe, { room, history: 1 }), await server.token("alice"));
        expect(response.status).toBe(200);
        const all = [];
        for await (const event of readSse(response)) all.push(event);
        expect(all).toEqual([
          { event: "retry", data: "2000" },
          {
            event: "error",
            id: undefined,
            data: JSON.stringify({
              code: "unavailable",
              message: `access to room "${room}" could not be decided: the application's authorizer did not answer; retry later`,
            }),
          },
        ]);
      } finally {
        backend.mode = "answer";
      }
    }
  });
});
