// Room access, decided in one place (src/auth/room-access.ts) and so the same
// on every transport: for each of the four sources of the decision (the room's
// name, the token's `rooms` claim, the application's backend behind
// --authorize-url, --rooms-default), an allowed and a refused call of each
// method that touches a room, on Connect, gRPC, gRPC-Web, SSE and WebSocket,
// with the exact code and message (DESIGN.md, "Rooms a team can ship").
import { createClient, type Transport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { RoomAction } from "../../src/auth/room-grants.js";
import { AuthorizerBackend } from "../helpers/authorizer-backend.js";
import { bearer, take, transportFor } from "../helpers/clients.js";
import { fiveTransportNames, fiveTransports, outcome, type FiveTransportName, type FiveTransports } from "../helpers/five-transports.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

type Grants = Readonly<Record<string, readonly RoomAction[]>>;
type Headers = ReturnType<typeof bearer>;

/** Each method that touches a room, as one call whose outcome is "ok" only when it did what the method does. */
const methods = {
  Subscribe: { action: "read", call: subscribeOne },
  Send: { action: "write", call: (transport, room, headers) => createClient(ChatService, transport).send({ room, text: "hi" }, headers) },
  History: { action: "read", call: historyOne },
  WatchPresence: { action: "read", call: watchOne },
  Signal: { action: "write", call: (transport, room, headers) => createClient(ChatService, transport).signal({ room, kind: "typing" }, headers) },
} as const satisfies Record<string, { action: RoomAction; call: (transport: Transport, room: string, headers: Headers) => Promise<unknown> }>;
type MethodName = keyof typeof methods;
const methodNames = Object.keys(methods) as MethodName[];

/** The room's newest stored message (each room is seeded with one before the matrix runs). */
async function subscribeOne(transport: Transport, room: string, headers: Headers): Promise<void> {
  const [first] = await take(createClient(ChatService, transport).subscribe({ room, history: 1 }, headers), 1);
  expect(first?.event.case === "message" && first.event.value.room).toBe(room);
}

async function historyOne(transport: Transport, room: string, headers: Headers): Promise<void> {
  const page = await createClient(ChatService, transport).history({ room, limit: 1 }, headers);
  expect(page.messages.map((m) => m.room)).toEqual([room]);
}

/** WatchPresence's first response is the member list (nobody subscribes meanwhile here, but any list will do). */
async function watchOne(transport: Transport, room: string, headers: Headers): Promise<void> {
  const [first] = await take(createClient(ChatService, transport).watchPresence({ room }, headers), 1);
  expect(first?.members).toBeInstanceOf(Array);
}

/** One row of the matrix: which server, who (with which claim), which room, and the expected outcome. */
interface Case {
  readonly source: string;
  readonly server: "hook" | "deny" | "allow";
  readonly user: string;
  readonly rooms?: Grants;
  /** The room, per action (a claim can grant one action and not the other). */
  readonly room: (action: RoomAction) => string;
  /** Whether the call is allowed, per action. */
  readonly allowed: (action: RoomAction) => boolean;
}

const always = () => true;
const never = () => false;

const cases: readonly Case[] = [
  { source: "name: a listed user", server: "deny", user: "alice", room: () => "dm#alice,bob", allowed: always },
  // The name decides alone: a `*` claim and a backend that says yes do not open another's room.
  {
    source: "name: an unlisted user with a * claim and a backend that allows",
    server: "hook",
    user: "carol",
    rooms: { "*": ["read", "write"] },
    room: () => "dm#alice,bob",
    allowed: never,
  },
  { source: "name: an unlisted user, --rooms-default allow", server: "allow", user: "carol", room: () => "dm#alice,bob", allowed: never },
  // The backend refuses alice in team-42:general; the claim decides first, so it is never asked.
  {
    source: "claim: team-42:* grants team-42:general",
    server: "hook",
    user: "alice",
    rooms: { "team-42:*": ["read", "write"] },
    room: () => "team-42:general",
    allowed: always,
  },
  // Reads of team-7:general match no pattern; writes to news are not granted by its read-only pattern: both fall through to deny.
  {
    source: "claim: no pattern grants the action (falls through to deny)",
    server: "deny",
    user: "alice",
    rooms: { "team-42:*": ["read", "write"], news: ["read"] },
    room: (action) => (action === "read" ? "team-7:general" : "news"),
    allowed: never,
  },
  // The backend refuses alice both: reads are the claim's, writes the backend's.
  {
    source: "claim: news read-only grants reads, writes fall through to the backend",
    server: "hook",
    user: "alice",
    rooms: { news: ["read"] },
    room: () => "news",
    allowed: (action) => action === "read",
  },
  { source: "hook: the backend allows", server: "hook", user: "alice", room: () => "private:x", allowed: always },
  { source: "hook: the backend refuses", server: "hook", user: "carol", room: () => "private:x", allowed: never },
  { source: "default: allow", server: "allow", user: "dave", room: () => "lobby", allowed: always },
  { source: "default: deny", server: "deny", user: "dave", room: () => "lobby", allowed: never },
];

describe("room access: four sources × five methods × five transports", () => {
  let backend: AuthorizerBackend;
  const servers = {} as Record<Case["server"], { server: TestServer; transports: FiveTransports }>;

  beforeAll(async () => {
    backend = await AuthorizerBackend.start();
    backend.decide("alice", "private:x", "read", { allowed: true, ttlSeconds: 60 });
    backend.decide("alice", "private:x", "write", { allowed: true, ttlSeconds: 60 });
    for (const action of ["read", "write"] as const) {
      backend.decide("carol", "dm#alice,bob", action, { allowed: true, ttlSeconds: 60 });
      backend.decide("alice", "team-42:general", action, { allowed: false, ttlSeconds: 60 });
    }
    backend.decide("alice", "news", "read", { allowed: false, ttlSeconds: 60 });
    const configs = {
      hook: { roomsDefault: "allow", authorizeUrl: backend.url },
      deny: { roomsDefault: "deny" },
      allow: { roomsDefault: "allow" },
    } as const;
    for (const [name, config] of Object.entries(configs)) {
      const server = await startTestServer({ config });
      servers[name as Case["server"]] = { server, transports: fiveTransports(server.url) };
      // One stored message per room, written by whoever may: alice in her DM, a `*` claim elsewhere.
      const chat = createClient(ChatService, transportFor(server.url, "connect", "1.1"));
      const anyRoom = bearer(await server.server.tokens.mint({ userId: "seeder", rooms: { "*": ["read", "write"] } }));
      const alice = bearer(await server.token("alice"));
      for (const room of ["dm#alice,bob", "team-42:general", "team-7:general", "news", "private:x", "lobby"]) {
        await chat.send({ room, text: `seed of ${room}` }, room.startsWith("dm#") ? alice : anyRoom);
      }
    }
  });
  afterAll(async () => {
    for (const { server, transports } of Object.values(servers)) {
      transports.close();
      await server.close();
    }
    await backend.close();
  });

  describe.each(cases)("$source", (c) => {
    it.each(methodNames.flatMap((method) => fiveTransportNames.map((transport) => [method, transport] as [MethodName, FiveTransportName])))(
      "%s over %s",
      async (method, transportName) => {
        const { server, transports } = servers[c.server];
        const { action, call } = methods[method];
        const room = c.room(action);
        const headers = bearer(await server.server.tokens.mint({ userId: c.user, rooms: c.rooms }));
        const expected = c.allowed(action) ? "ok" : `PermissionDenied: not allowed to ${action} room "${room}"`;
        expect(await outcome(() => call(transports.get(transportName), room, headers))).toBe(expected);
      },
    );
  });

  it("asked the backend only where the name and the claim did not decide", () => {
    for (const action of ["read", "write"] as const) {
      expect(backend.count("carol", "dm#alice,bob", action)).toBe(0);
      expect(backend.count("alice", "team-42:general", action)).toBe(0);
    }
    expect(backend.count("alice", "news", "read")).toBe(0);
    // Writes to news fell through the read-only claim to the backend; private:x is the backend's alone.
    expect(backend.count("alice", "news", "write")).toBe(1);
    expect(backend.count("alice", "private:x", "read")).toBe(1);
    expect(backend.count("carol", "private:x", "read")).toBe(1);
  });
});

describe("room names and the rooms claim", () => {
  let server: TestServer;
  let transports: FiveTransports;

  beforeAll(async () => {
    server = await startTestServer({ config: { roomsDefault: "allow" } });
    transports = fiveTransports(server.url);
  });
  afterAll(async () => {
    transports.close();
    await server.close();
  });

  it.each(fiveTransportNames)("names of 200 characters and of every allowed character are accepted, 201 refused (%s)", async (transportName) => {
    const chat = createClient(ChatService, transports.get(transportName));
    const alice = bearer(await server.token("alice"));
    for (const room of ["a".repeat(200), "team-42:general", "a@b.c", "dm#alice,bob", "A-z_0.9:#,@"]) {
      expect(await outcome(() => chat.send({ room, text: "hi" }, alice)), room).toBe(
        room === "A-z_0.9:#,@" ? 'PermissionDenied: not allowed to write room "A-z_0.9:#,@"' : "ok",
      );
    }
    expect(await outcome(() => chat.send({ room: "a".repeat(201), text: "hi" }, alice))).toBe("InvalidArgument: room is longer than 200 characters");
    expect(await outcome(() => take(chat.subscribe({ room: "a".repeat(201) }, alice), 1))).toBe("InvalidArgument: room is longer than 200 characters");
  });

  it.each(fiveTransportNames)("a user-limited room's users are those after its last #, and dm# and dm#, name nobody (%s)", async (transportName) => {
    const chat = createClient(ChatService, transports.get(transportName));
    const alice = bearer(await server.server.tokens.mint({ userId: "alice", rooms: { "*": ["read", "write"] } }));
    const expected: [string, string][] = [
      ["support#alice", "ok"],
      ["a#bob#alice", "ok"],
      ["alice#bob", 'PermissionDenied: not allowed to write room "alice#bob"'],
      ["dm#", 'PermissionDenied: not allowed to write room "dm#"'],
      ["dm#,", 'PermissionDenied: not allowed to write room "dm#,"'],
      ["dm#alicea,bob", 'PermissionDenied: not allowed to write room "dm#alicea,bob"'],
    ];
    for (const [room, result] of expected) expect(await outcome(() => chat.send({ room, text: "hi" }, alice)), room).toBe(result);
  });

  const malformed: [string, unknown, string][] = [
    [
      "a pattern mapped to a string",
      { x: "read" },
      'token claim "rooms" must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"',
    ],
    [
      "a pattern with a space",
      { "team 42:*": ["read"] },
      'token claim "rooms" must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"; "team 42:*" is neither a room name nor a prefix of one followed by "*"',
    ],
    [
      "an unknown action",
      { lobby: ["admin"] },
      'token claim "rooms" must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"; "lobby" lists "admin"',
    ],
    ["a list", ["lobby"], 'token claim "rooms" must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"'],
  ];

  it.each(malformed)("a rooms claim with %s is unauthenticated, naming the claim", async (_what, rooms, message) => {
    const token = bearer(await server.server.tokens.mint({ userId: "alice", rooms: rooms as Grants }));
    for (const transportName of fiveTransportNames) {
      const chat = createClient(ChatService, transports.get(transportName));
      expect(await outcome(() => chat.send({ room: "lobby", text: "hi" }, token)), transportName).toBe(`Unauthenticated: ${message}`);
      expect(await outcome(() => take(chat.subscribe({ room: "lobby", history: 1 }, token), 1)), transportName).toBe(`Unauthenticated: ${message}`);
    }
  });
});
