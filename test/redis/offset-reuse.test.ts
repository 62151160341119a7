import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { createRedisKeys } from "../../src/broker/redis/keys.js";
import { roomTopic } from "../../src/services/chat.js";
import { redisAvailable, redisUrl } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startInstances, type Instances } from "./instances.js";
import { startRoomSubscriber, subscriberKinds, type RoomEvent, type RoomSubscriber } from "./room-subscriber.js";

/** An event as the assertions compare it: a message's text, or the gap's reason. */
const shown = (event: RoomEvent) => (event.kind === "message" ? event.text : `gap ${GapReason[event.reason]}`);

/**
 * What a client of every transport sees when Redis hands out again the
 * offsets of messages it lost (a failover to a replica that lacked them,
 * emulated on one Redis as in test/broker/redis-offset-reuse.test.ts): a
 * client resuming from a lost message's cursor gets a gap first, whether its
 * cursor is past the new head or its offset was taken by a new message.
 */
describe.runIf(redisAvailable())("a resume after Redis lost acknowledged messages", () => {
  let instances: Instances;
  let redis: Redis;
  beforeAll(async () => {
    instances = await startInstances(1);
    redis = new Redis(redisUrl);
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await instances?.close();
  });

  it("gives every transport an EPOCH_CHANGED gap before the rewritten log, never a silent skip", async () => {
    const [instance] = instances.list;
    const token = await instances.token("alice");
    const chat = clientFor(ChatService, transportFor(instance!.url, "connect", "2"));
    const room = "rewritten";
    const send = async (text: string) => (await chat.send({ room, text }, bearer(token))).message!;
    const sent = [];
    for (let i = 1; i <= 5; i++) sent.push(await send(`m${i}`));
    const kept = sent[4]!.cursor;

    // The promoted replica's state: m4 and m5 never reached it.
    const keys = createRedisKeys(instances.prefix);
    const topic = roomTopic(room);
    const base = await redis.hget(keys.meta(topic), "base");
    expect(await redis.xdel(keys.log(topic), `${base}-4`, `${base}-5`)).toBe(2);
    await redis.call("XSETID", keys.log(topic), `${base}-3`);
    await redis.hset(keys.meta(topic), "offset", 3);

    const subscribe = (cursor: string) =>
      subscriberKinds.map((kind) => ({ name: kind.name, subscriber: startRoomSubscriber({ kind, room, token, cursor, pick: () => instance!.url }) }));
    const reached = (subscribers: { name: string; subscriber: RoomSubscriber }[], text: string) =>
      Promise.all(
        subscribers.map(({ subscriber }) => subscriber.until((events) => events.some((event) => event.kind === "message" && event.text === text), text)),
      );
    const early: { name: string; subscriber: RoomSubscriber }[] = [];
    const late: { name: string; subscriber: RoomSubscriber }[] = [];
    try {
      // Cursors past the new head: a gap and the log as it is, then live messages.
      early.push(...subscribe(kept));
      await reached(early, "m3");
      await send("n4");
      await send("n5");
      await reached(early, "n5");
      // Cursors whose offset a new message took: a gap too, not n4 and n5 skipped.
      late.push(...subscribe(kept));
      await reached(late, "n5");
    } finally {
      await Promise.all([...early, ...late].map(({ subscriber }) => subscriber.stop()));
    }
    // A history page before a lost message: its log was rewritten, as for a lost epoch.
    await expect(chat.history({ room, before: kept }, bearer(token))).rejects.toMatchObject({ code: Code.FailedPrecondition });
    const expected = ["gap EPOCH_CHANGED", "m1", "m2", "m3", "n4", "n5"];
    for (const { name, subscriber } of [...early, ...late]) {
      expect(subscriber.events.map(shown), name).toEqual(expected);
      expect(subscriber.errors, name).toEqual([]);
    }
  }, 60_000);
});
