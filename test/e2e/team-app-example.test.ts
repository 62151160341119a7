// docs/security.md's worked example, run as written: the team app's
// authorizer (examples/team-app/authorizer.mjs, a real HTTP server in its own
// process), Alice's claims (examples/team-app/alice-claims.json), a server
// with a secret (rooms default to deny) asking that authorizer, and every row
// of the example's table with its exact outcome.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { RoomAction } from "../../src/auth/room-grants.js";
import { bearer, take, transportFor } from "../helpers/clients.js";
import { outcome } from "../helpers/five-transports.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const claims = JSON.parse(readFileSync("examples/team-app/alice-claims.json", "utf8")) as { sub: string; rooms: Record<string, RoomAction[]> };
const authorizeToken = "team-app-authorizer-secret";

describe("docs/security.md's team app", () => {
  let authorizer: ChildProcess;
  let server: TestServer;
  let chat: Client<typeof ChatService>;
  let alice: ReturnType<typeof bearer>;
  let carol: ReturnType<typeof bearer>;

  beforeAll(async () => {
    authorizer = spawn(process.execPath, ["examples/team-app/authorizer.mjs"], {
      env: { ...process.env, PORT: "0", AUTHORIZE_TOKEN: authorizeToken },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const [line] = (await once(createInterface({ input: authorizer.stdout! }), "line")) as [string];
    const url = /listening on (http:\S+)/.exec(line)![1]!;
    server = await startTestServer({ config: { roomsDefault: "deny", authorizeUrl: url, authorizeToken } });
    chat = createClient(ChatService, transportFor(server.url, "connect", "2"));
    const tokens = server.server.tokens;
    alice = bearer(await tokens.mint({ userId: claims.sub, rooms: claims.rooms }));
    carol = bearer(await tokens.mint({ userId: "carol", rooms: { "*": ["read", "write"] } }));
    const writer = bearer(await tokens.mint({ userId: "news-desk", rooms: { announcements: ["read", "write"] } }));
    await chat.send({ room: "announcements", text: "welcome" }, writer);
  });
  afterAll(async () => {
    authorizer?.kill();
    await server?.close();
  });

  it("Alice sends to lobby: her claim grants it", async () => {
    expect(await outcome(() => chat.send({ room: "lobby", text: "hi" }, alice))).toBe("ok");
  });

  it("Alice subscribes to announcements: her claim grants read", async () => {
    const [first] = await take(chat.subscribe({ room: "announcements", history: 1 }, alice), 1);
    expect(first?.event.case === "message" && first.event.value.text).toBe("welcome");
  });

  it("Alice may not send to announcements: her claim grants read only, and the authorizer refuses", async () => {
    expect(await outcome(() => chat.send({ room: "announcements", text: "me too" }, alice))).toBe(
      'PermissionDenied: not allowed to write room "announcements"',
    );
  });

  it("Alice reads team-42:design's history: team-42:* grants it", async () => {
    expect(await outcome(() => chat.history({ room: "team-42:design" }, alice))).toBe("ok");
  });

  it("Alice may not subscribe to team-7:general: no claim, and the authorizer refuses", async () => {
    expect(await outcome(() => take(chat.subscribe({ room: "team-7:general" }, alice), 1))).toBe('PermissionDenied: not allowed to read room "team-7:general"');
  });

  it("Alice sends to dm#alice,bob: the name lists her", async () => {
    expect(await outcome(() => chat.send({ room: "dm#alice,bob", text: "psst" }, alice))).toBe("ok");
  });

  it("Carol may not subscribe to dm#alice,bob, even with a * claim: the name decides alone", async () => {
    expect(await outcome(() => take(chat.subscribe({ room: "dm#alice,bob", history: 1 }, carol), 1))).toBe(
      'PermissionDenied: not allowed to read room "dm#alice,bob"',
    );
  });

  it("nobody subscribes to random: nothing grants it and rooms default to deny", async () => {
    const dave = bearer(await server.server.tokens.mint({ userId: "dave" }));
    expect(await outcome(() => take(chat.subscribe({ room: "random" }, dave), 1))).toBe('PermissionDenied: not allowed to read room "random"');
  });

  it("Alice watches private:launch's presence: the authorizer says she is a member", async () => {
    const [members] = await take(chat.watchPresence({ room: "private:launch" }, alice), 1);
    expect(members?.members).toEqual([]);
  });

  it("Alice's signal in private:launch while the app is down gets unavailable, and claims keep working", async () => {
    authorizer.kill();
    await once(authorizer, "exit");
    expect(await outcome(() => chat.signal({ room: "private:launch", kind: "typing" }, alice))).toBe(
      'Unavailable: access to room "private:launch" could not be decided: the application\'s authorizer did not answer; retry later',
    );
    expect(await outcome(() => chat.send({ room: "lobby", text: "still here" }, alice))).toBe("ok");
  });
});
