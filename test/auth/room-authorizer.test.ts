// The authorize hook's client against a real HTTP backend, where the e2e
// suites cannot be exact without timing: questions asked in the same moment
// share one request, and no answer is reused for more than ten minutes
// whatever ttl the backend gives (a fake clock stands in for the ten minutes).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRoomAuthorizer } from "../../src/auth/room-authorizer.js";
import type { Identity } from "../../src/auth/identity.js";
import { AuthorizerBackend } from "../helpers/authorizer-backend.js";

const alice: Identity = { userId: "alice", roles: new Set(["member"]), expiresAt: undefined };

describe("the authorize hook's client", () => {
  let backend: AuthorizerBackend;
  beforeAll(async () => {
    backend = await AuthorizerBackend.start();
  });
  afterAll(() => backend.close());

  it("asks once for ten questions asked at once, even when the answer may not be reused (ttl 0)", async () => {
    backend.decide("alice", "crowd", "read", { allowed: true, ttlSeconds: 0 });
    const authorizer = createRoomAuthorizer({ url: backend.url, timeoutMs: 5000 });
    const answers = await Promise.all(Array.from({ length: 10 }, () => authorizer.ask(alice, "crowd", "read")));
    expect(answers.map((a) => a.allowed)).toEqual(Array(10).fill(true));
    expect(backend.count("alice", "crowd", "read")).toBe(1);
    // Not reused afterwards: ttl 0.
    await authorizer.ask(alice, "crowd", "read");
    expect(backend.count("alice", "crowd", "read")).toBe(2);
  });

  it("reuses an answer for at most ten minutes, whatever ttl it came with", async () => {
    backend.decide("alice", "long", "write", { allowed: true, ttlSeconds: 86_400 });
    let now = 1_000_000;
    const authorizer = createRoomAuthorizer({ url: backend.url, timeoutMs: 5000, now: () => now });
    expect((await authorizer.ask(alice, "long", "write")).until).toBe(now + 600_000);
    now += 599_999;
    await authorizer.ask(alice, "long", "write");
    expect(backend.count("alice", "long", "write")).toBe(1);
    now += 1;
    await authorizer.ask(alice, "long", "write");
    expect(backend.count("alice", "long", "write")).toBe(2);
  });

  it("keeps answers apart by user, room and action, and sends the roles", async () => {
    backend.decide("alice", "split", "read", { allowed: true, ttlSeconds: 60 });
    backend.decide("alice", "split", "write", { allowed: false, ttlSeconds: 60 });
    const authorizer = createRoomAuthorizer({ url: backend.url, timeoutMs: 5000 });
    expect((await authorizer.ask(alice, "split", "read")).allowed).toBe(true);
    expect((await authorizer.ask(alice, "split", "write")).allowed).toBe(false);
    expect((await authorizer.ask({ ...alice, userId: "bob" }, "split", "read")).allowed).toBe(false);
    expect(backend.questions.filter((q) => q.room === "split")).toEqual([
      { userId: "alice", roles: ["member"], room: "split", action: "ROOM_ACTION_READ" },
      { userId: "alice", roles: ["member"], room: "split", action: "ROOM_ACTION_WRITE" },
      { userId: "bob", roles: ["member"], room: "split", action: "ROOM_ACTION_READ" },
    ]);
  });
});
