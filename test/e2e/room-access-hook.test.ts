// Room access over time: grants withdrawn from open streams and from resumes,
// the cache in front of the application's backend (--authorize-url), and what
// a failing, hanging or absent backend means (unavailable, never an allow).
// The backend is a real HTTP server (test/helpers/authorizer-backend.ts).
import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import { createClient, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createSseTransport } from "../../src/client/sse-transport.js";
import { createWebSocketTransport } from "../../src/client/websocket-transport.js";
import { AuthorizerBackend } from "../helpers/authorizer-backend.js";
import { bearer, take, transportFor } from "../helpers/clients.js";
import { fiveTransportNames, fiveTransports, outcome, type FiveTransports } from "../helpers/five-transports.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const authorizeToken = "rivulet-to-backend-secret";

/** The message `unavailable` carries when the backend did not answer. */
const undecided = (room: string) => `Unavailable: access to room "${room}" could not be decided: the application's authorizer did not answer; retry later`;
const refused = (action: string, room: string) => `PermissionDenied: not allowed to ${action} room "${room}"`;

describe("the authorize hook: withdrawal, cache", () => {
  let backend: AuthorizerBackend;
  let server: TestServer;
  let transports: FiveTransports;
  /** Writes anywhere by claim: seeding never asks the backend. */
  let writer: ReturnType<typeof bearer>;
  let connect: Transport;

  beforeAll(async () => {
    backend = await AuthorizerBackend.start();
    server = await startTestServer({ config: { roomsDefault: "deny", authorizeUrl: backend.url, authorizeToken } });
    transports = fiveTransports(server.url);
    connect = transportFor(server.url, "connect", "1.1");
    writer = bearer(await server.server.tokens.mint({ userId: "writer", rooms: { "*": ["read", "write"] } }));
  });
  afterAll(async () => {
    transports.close();
    await server.close();
    await backend.close();
  });

  async function seed(room: string): Promise<string> {
    return (await createClient(ChatService, connect).send({ room, text: `seed of ${room}` }, writer)).message!.cursor;
  }

  describe.each(fiveTransportNames)("%s", (transportName) => {
    it("a stream granted for 1 s ends with permission_denied when the backend turns, and resuming it is refused", async () => {
      const room = `private:ttl-${transportName}`;
      backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 1 });
      await seed(room);
      const chat = createClient(ChatService, transports.get(transportName));
      const alice = bearer(await server.token("alice"));
      const stream = chat.subscribe({ room, history: 1 }, alice)[Symbol.asyncIterator]();
      const first = await stream.next();
      const cursor = (first.value as SubscribeResponse).cursor;
      expect(cursor).not.toBe("");
      backend.decide("alice", room, "read", { allowed: false, ttlSeconds: 60 });
      // The stream is asked again when the 1 s answer runs out, and ends with the refusal.
      expect(
        await outcome(async () => {
          for (let next = await stream.next(); !next.done; next = await stream.next()) throw new Error("a message after the grant was withdrawn");
        }),
      ).toBe(refused("read", room));
      expect(await outcome(() => take(chat.subscribe({ room, cursor }, alice), 1))).toBe(refused("read", room));
    });

    it("a WatchPresence stream granted for 1 s ends with permission_denied when the backend turns", async () => {
      const room = `private:watch-${transportName}`;
      backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 1 });
      const chat = createClient(ChatService, transports.get(transportName));
      const stream = chat.watchPresence({ room }, bearer(await server.token("alice")))[Symbol.asyncIterator]();
      expect((await stream.next()).value?.members).toEqual([]);
      backend.decide("alice", room, "read", { allowed: false, ttlSeconds: 60 });
      expect(
        await outcome(async () => {
          for (let next = await stream.next(); !next.done; next = await stream.next()) throw new Error("a response after the grant was withdrawn");
        }),
      ).toBe(refused("read", room));
    });

    it("resuming with a refreshed token that lacks the claim is refused", async () => {
      const room = `team-42:resume-${transportName}`;
      await seed(room);
      const chat = createClient(ChatService, transports.get(transportName));
      const granted = bearer(await server.server.tokens.mint({ userId: "bob", rooms: { "team-42:*": ["read", "write"] } }));
      const [first] = await take(chat.subscribe({ room, history: 1 }, granted), 1);
      const refreshed = bearer(await server.server.tokens.mint({ userId: "bob", rooms: { "team-7:*": ["read", "write"] } }));
      // Not granted by the claim, so the backend decides: it has no answer for bob there and refuses.
      expect(await outcome(() => take(chat.subscribe({ room, cursor: first!.cursor }, refreshed), 1))).toBe(refused("read", room));
      // With the grant, the same resume continues after the cursor.
      await createClient(ChatService, connect).send({ room, text: "after" }, writer);
      const [resumed] = await take(chat.subscribe({ room, cursor: first!.cursor }, granted), 1);
      expect(resumed?.event.case === "message" && resumed.event.value.text).toBe("after");
    });
  });

  it("the same question twice within its ttl asks the backend once", async () => {
    const room = "private:twice";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 60 });
    await seed(room);
    const chat = createClient(ChatService, connect);
    const alice = bearer(await server.token("alice"));
    await chat.history({ room }, alice);
    await take(chat.subscribe({ room, history: 1 }, alice), 1);
    expect(backend.count("alice", room, "read")).toBe(1);
    // Another user and another action are other questions.
    backend.decide("bob", room, "read", { allowed: true, ttlSeconds: 60 });
    await chat.history({ room }, bearer(await server.token("bob")));
    expect(await outcome(() => chat.send({ room, text: "hi" }, alice))).toBe(refused("write", room));
    expect([backend.count("alice", room, "read"), backend.count("bob", room, "read"), backend.count("alice", room, "write")]).toEqual([1, 1, 1]);
  });

  it("ten concurrent Subscribes of one user to one room ask once", async () => {
    const room = "private:ten";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 60 });
    await seed(room);
    const chat = createClient(ChatService, connect);
    const alice = bearer(await server.token("alice"));
    const firsts = await Promise.all(Array.from({ length: 10 }, () => take(chat.subscribe({ room, history: 1 }, alice), 1)));
    expect(firsts.map(([first]) => first?.event.case)).toEqual(Array(10).fill("message"));
    expect(backend.count("alice", room, "read")).toBe(1);
  });

  it("an answer with ttl 0 is asked for every time", async () => {
    const room = "private:ttl0";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 0 });
    const chat = createClient(ChatService, connect);
    const alice = bearer(await server.token("alice"));
    for (let i = 0; i < 3; i++) await chat.history({ room }, alice);
    expect(backend.count("alice", room, "read")).toBe(3);
  });

  it("after its ttl an answer is asked for again, by a new call and by an open stream", async () => {
    const room = "private:ttl1";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 1 });
    await seed(room);
    const chat = createClient(ChatService, connect);
    const alice = bearer(await server.token("alice"));
    await chat.history({ room }, alice);
    expect(backend.count("alice", room, "read")).toBe(1);
    // Calls within the second reuse the answer; the first after it asks again.
    await vi.waitFor(
      async () => {
        await chat.history({ room }, alice);
        expect(backend.count("alice", room, "read")).toBe(2);
      },
      { timeout: 5000, interval: 100 },
    );
    // An open stream is asked again each time its answer runs out, and stays open while it is yes.
    const stream = chat.subscribe({ room, history: 1 }, alice)[Symbol.asyncIterator]();
    await stream.next();
    const asked = backend.count("alice", room, "read");
    await vi.waitFor(() => expect(backend.count("alice", room, "read")).toBeGreaterThanOrEqual(asked + 2), { timeout: 8000, interval: 50 });
    await seed(room);
    const next = await stream.next();
    expect(next.value?.event.case === "message" && next.value.event.value.text).toBe(`seed of ${room}`);
    await stream.return?.();
  });

  it("every question carries the --authorize-token as a bearer token", () => {
    expect(backend.authorizations.length).toBeGreaterThan(0);
    expect(new Set(backend.authorizations)).toEqual(new Set([`Bearer ${authorizeToken}`]));
  });

  it("the question is the user, the token's roles, the room and the action", async () => {
    const room = "private:question";
    const chat = createClient(ChatService, connect);
    const erin = bearer(await server.server.tokens.mint({ userId: "erin", roles: ["staff", "mod"] }));
    expect(await outcome(() => chat.signal({ room, kind: "typing" }, erin))).toBe(refused("write", room));
    expect(backend.questions.filter((q) => q.room === room)).toEqual([{ userId: "erin", roles: ["staff", "mod"], room, action: "ROOM_ACTION_WRITE" }]);
  });
});

describe("the authorize hook failing", () => {
  let backend: AuthorizerBackend;
  let server: TestServer;
  let absent: TestServer;

  beforeAll(async () => {
    backend = await AuthorizerBackend.start();
    server = await startTestServer({ config: { roomsDefault: "allow", authorizeUrl: backend.url, authorizeTimeoutMs: 1000 } });
    // A port nothing listens on: bound, then closed.
    const probe = net.createServer().listen(0, "127.0.0.1");
    await once(probe, "listening");
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, "close");
    absent = await startTestServer({ config: { roomsDefault: "allow", authorizeUrl: `http://127.0.0.1:${port}`, authorizeTimeoutMs: 1000 } });
  });
  afterAll(async () => {
    await server.close();
    await absent.close();
    await backend.close();
  });

  // SSE and WebSocket streams retry unavailable by themselves (a transient code); their unary calls and the raw SSE answer are tested elsewhere.
  const transportNames = ["Connect", "gRPC", "gRPC-Web"] as const;
  const methods = ["Subscribe", "Send", "History", "WatchPresence", "Signal"] as const;
  const modes = ["fail", "hang", "garbage", "closed"] as const;

  async function call(transport: Transport, method: (typeof methods)[number], room: string, headers: ReturnType<typeof bearer>): Promise<unknown> {
    const chat = createClient(ChatService, transport);
    switch (method) {
      case "Subscribe":
        return take(chat.subscribe({ room, history: 1 }, headers), 1);
      case "Send":
        return chat.send({ room, text: "hi" }, headers);
      case "History":
        return chat.history({ room }, headers);
      case "WatchPresence":
        return take(chat.watchPresence({ room }, headers), 1);
      case "Signal":
        return chat.signal({ room, kind: "typing" }, headers);
    }
  }

  it.each(modes.flatMap((mode) => methods.flatMap((method) => transportNames.map((t) => [mode, method, t] as const))))(
    "backend %s: %s over %s is unavailable, never allowed",
    async (mode, method, transportName) => {
      const target = mode === "closed" ? absent : server;
      backend.mode = mode === "closed" ? "answer" : mode;
      const room = `private:${mode}`;
      // Were it asked and answering, the backend would allow.
      for (const action of ["read", "write"] as const) backend.decide("alice", room, action, { allowed: true, ttlSeconds: 60 });
      const transport = fiveTransports(target.url);
      try {
        const alice = bearer(await target.token("alice"));
        expect(await outcome(() => call(transport.get(transportName), method, room, alice))).toBe(undecided(room));
      } finally {
        transport.close();
        backend.mode = "answer";
      }
    },
  );

  it.each(transportNames)("a stream whose backend fails when asked again ends with unavailable (%s)", async (transportName) => {
    const room = `private:recheck-fails-${transportName}`;
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 1 });
    const transport = fiveTransports(server.url);
    try {
      const chat = createClient(ChatService, transport.get(transportName));
      const stream = chat.watchPresence({ room }, bearer(await server.token("alice")))[Symbol.asyncIterator]();
      expect((await stream.next()).value?.members).toEqual([]);
      backend.mode = "fail";
      expect(
        await outcome(async () => {
          for (let next = await stream.next(); !next.done; next = await stream.next()) throw new Error("a response after the backend failed");
        }),
      ).toBe(undecided(room));
    } finally {
      transport.close();
      backend.mode = "answer";
    }
  });

  it("while the backend hangs, the server and claim-granted calls carry on; a failure is not cached", async () => {
    const room = "private:carry-on";
    backend.decide("alice", room, "read", { allowed: true, ttlSeconds: 60 });
    backend.mode = "hang";
    const chat = createClient(ChatService, transportFor(server.url, "connect", "2"));
    const alice = bearer(await server.token("alice"));
    const hanging = outcome(() => take(chat.subscribe({ room, history: 1 }, alice), 1));
    await vi.waitFor(() => expect(backend.count("alice", room, "read")).toBe(1));
    const granted = bearer(await server.server.tokens.mint({ userId: "alice", rooms: { "team-42:*": ["read", "write"] } }));
    await chat.send({ room: "team-42:general", text: "meanwhile" }, granted);
    const [first] = await take(chat.subscribe({ room: "team-42:general", history: 1 }, granted), 1);
    expect(first?.event.case === "message" && first.event.value.text).toBe("meanwhile");
    expect(await hanging).toBe(undecided(room));
    backend.mode = "answer";
    expect(await outcome(() => chat.history({ room }, alice))).toBe("ok");
    expect(backend.count("alice", room, "read")).toBe(2);
  });
});

describe("a token refreshed without the grant", () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ config: { roomsDefault: "deny" } });
  });
  afterAll(async () => {
    await server.close();
  });

  // The clients that refresh a token themselves: when the stream's token expires (unauthenticated), they ask their
  // token function again and resume from the last cursor; the resume with a token lacking the claim is refused.
  it.each(["SSE", "WebSocket"] as const)("ends the client's stream with permission_denied when it resumes (%s)", async (transportName) => {
    const room = `team-42:refresh-${transportName}`;
    const mint = (rooms: Record<string, ("read" | "write")[]>, ttlSeconds: number) => server.server.tokens.mint({ userId: "frank", rooms, ttlSeconds });
    const writer = bearer(await mint({ [room]: ["read", "write"] }, 3600));
    await createClient(ChatService, transportFor(server.url, "connect", "1.1")).send({ room, text: "before" }, writer);
    // One to two seconds of life (`exp` counts whole seconds), then a token for other rooms only.
    const tokens = [await mint({ "team-42:*": ["read"] }, 2), await mint({ "team-7:*": ["read"] }, 3600)];
    const token = () => (tokens.length > 1 ? tokens.shift()! : tokens[0]!);
    const webSocket =
      transportName === "WebSocket"
        ? createWebSocketTransport({ url: `${server.url.replace(/^http/, "ws")}/ws`, token, backoffInitialMs: 10, backoffMaxMs: 50 })
        : undefined;
    const transport = webSocket ?? createSseTransport({ baseUrl: server.url, token, backoff: { initialMs: 10, maxMs: 50 } });
    try {
      const received: string[] = [];
      const code = await outcome(async () => {
        for await (const response of createClient(ChatService, transport).subscribe({ room, history: 1 })) {
          received.push(response.event.case === "message" ? response.event.value.text : `<${response.event.case}>`);
        }
      });
      expect(received).toEqual(["before"]);
      expect(code).toBe(refused("read", room));
      expect(tokens).toHaveLength(1);
    } finally {
      webSocket?.close();
    }
  });
});
