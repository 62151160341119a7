import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { allTransports, bearer, clientFor, take } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const texts = (responses: SubscribeResponse[]) =>
  responses.map((r) => (r.event.case === "message" ? r.event.value.text : `gap:${r.event.case === "gap" ? r.event.value.reason : "?"}`));

describe("chat subscriptions resume from a cursor", () => {
  let server: TestServer;
  let alice: ReturnType<typeof bearer>;
  beforeAll(async () => {
    server = await startTestServer({ config: { historyCount: 5 } });
    alice = bearer(await server.token("alice"));
  });
  afterAll(() => server.close());

  it.each(allTransports("http://placeholder").map((t) => t.name))("resumes with exactly the missed messages over %s", async (name) => {
    const transport = allTransports(server.url).find((t) => t.name === name)!.transport;
    const chat = clientFor(ChatService, transport);
    const room = `resume-${name.replace(/\W+/g, "-")}`;
    for (const text of ["m1", "m2"]) await chat.send({ room, text }, alice);
    // Receive two, then disconnect.
    const first = await take(chat.subscribe({ room, history: 2 }, alice), 2);
    expect(texts(first)).toEqual(["m1", "m2"]);
    // More are sent while the subscriber is away.
    for (const text of ["m3", "m4", "m5"]) await chat.send({ room, text }, alice);
    const resumed = await take(chat.subscribe({ room, cursor: first[1]!.cursor }, alice), 3);
    expect(texts(resumed)).toEqual(["m3", "m4", "m5"]);
    // Cursors strictly follow each other: nothing skipped, nothing repeated, and live messages continue after them.
    const live = chat.subscribe({ room, cursor: resumed[2]!.cursor }, alice)[Symbol.asyncIterator]();
    const next = live.next();
    await chat.send({ room, text: "m6" }, alice);
    expect(texts([(await next).value as SubscribeResponse])).toEqual(["m6"]);
    await live.return?.();
  });

  it("says gap first when history was trimmed, then continues from the oldest retained message", async () => {
    const chat = clientFor(ChatService, allTransports(server.url)[1]!.transport);
    const room = "trimmed";
    const sent = [];
    for (let i = 1; i <= 8; i++) sent.push((await chat.send({ room, text: `t${i}` }, alice)).message!);
    // History keeps 5 (t4..t8); resuming after t1 cannot replay t2 and t3.
    const resumed = await take(chat.subscribe({ room, cursor: sent[0]!.cursor }, alice), 6);
    expect(texts(resumed)).toEqual([`gap:${GapReason.HISTORY_TRIMMED}`, "t4", "t5", "t6", "t7", "t8"]);
    // The gap's cursor resumes right before the oldest retained message: no second gap.
    const again = await take(chat.subscribe({ room, cursor: resumed[0]!.cursor }, alice), 5);
    expect(texts(again)).toEqual(["t4", "t5", "t6", "t7", "t8"]);
  });

  it("says gap first when the cursor's epoch is gone (another broker incarnation)", async () => {
    const other = await startTestServer();
    try {
      const before = clientFor(ChatService, allTransports(other.url)[0]!.transport);
      const token = bearer(await other.token("alice"));
      const old = (await before.send({ room: "epoch", text: "old" }, token)).message!;
      const chat = clientFor(ChatService, allTransports(server.url)[0]!.transport);
      await chat.send({ room: "epoch", text: "new1" }, alice);
      await chat.send({ room: "epoch", text: "new2" }, alice);
      const resumed = await take(chat.subscribe({ room: "epoch", cursor: old.cursor }, alice), 3);
      expect(texts(resumed)).toEqual([`gap:${GapReason.EPOCH_CHANGED}`, "new1", "new2"]);
    } finally {
      await other.close();
    }
  });

  it("refuses a cursor from another room with invalid_argument", async () => {
    const chat = clientFor(ChatService, allTransports(server.url)[0]!.transport);
    const cursor = (await chat.send({ room: "room-a", text: "x" }, alice)).message!.cursor;
    await expect(take(chat.subscribe({ room: "room-b", cursor }, alice), 1)).rejects.toMatchObject({
      code: 3,
      rawMessage: "cursor belongs to another stream",
    });
  });

  it("returns the original message for a repeated idempotency key, and publishes nothing", async () => {
    const chat = clientFor(ChatService, allTransports(server.url)[1]!.transport);
    const first = await chat.send({ room: "idem", text: "once", idempotencyKey: "k-1" }, alice);
    const retry = await chat.send({ room: "idem", text: "once", idempotencyKey: "k-1" }, alice);
    expect(retry.message).toEqual(first.message);
    // Another author with the same key is another message.
    const bob = bearer(await server.token("bob"));
    const bobs = await chat.send({ room: "idem", text: "once", idempotencyKey: "k-1" }, bob);
    expect(bobs.message?.id).not.toBe(first.message?.id);
    const marker = await chat.send({ room: "idem", text: "marker" }, alice);
    const history = await take(chat.subscribe({ room: "idem", history: 5 }, alice), 3);
    expect(history.map((r) => (r.event.case === "message" ? `${r.event.value.author}:${r.event.value.text}` : ""))).toEqual([
      "alice:once",
      "bob:once",
      "alice:marker",
    ]);
    expect(history[2]!.cursor).toBe(marker.message!.cursor);
  });

  it("keeps idempotency keys apart for users whose ids contain a slash", async () => {
    const chat = clientFor(ChatService, allTransports(server.url)[1]!.transport);
    // User "a" with key "b/c" and user "a/b" with key "c" must not collide.
    const one = await chat.send({ room: "idem-slash", text: "from a", idempotencyKey: "b/c" }, bearer(await server.token("a")));
    const two = await chat.send({ room: "idem-slash", text: "from a/b", idempotencyKey: "c" }, bearer(await server.token("a/b")));
    expect(two.message).toMatchObject({ author: "a/b", text: "from a/b" });
    expect(two.message?.id).not.toBe(one.message?.id);
  });
});
