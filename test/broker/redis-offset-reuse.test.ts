import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Entry } from "../../src/broker/broker.js";
import { decodeCursor, encodeEntryCursor } from "../../src/broker/cursor.js";
import { createRedisBroker, type RedisBroker } from "../../src/broker/redis/redis-broker.js";
import { createRedisKeys } from "../../src/broker/redis/keys.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "./test-redis.js";

const text = (entry: Entry) => new TextDecoder().decode(entry.data);

/**
 * A failover to a replica that lacked the master's last entries, emulated on
 * one Redis: the entries go (XDEL), the stream's last id and the offset
 * counter step back (XSETID, HSET), as the promoted replica has them; the epoch stays. New publishes then take
 * the lost offsets. A cursor of a lost entry must answer a gap, never read on
 * silently past messages it has not seen (test/redis/cluster-failover.test.ts
 * does it with a real failover).
 */
describe.runIf(redisAvailable())("Redis broker: offsets handed out again after lost entries", () => {
  let prefix: string;
  let broker: RedisBroker;
  let redis: Redis;
  let clock: number;
  const topic = "room";
  beforeEach(async () => {
    prefix = uniquePrefix();
    clock = Date.now();
    broker = await createRedisBroker({ url: redisUrl, prefix, now: () => clock });
    redis = new Redis(redisUrl);
  });
  afterEach(async () => {
    await broker.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  async function publish(message: string): Promise<Entry> {
    clock += 1;
    return (await broker.publish(topic, new TextEncoder().encode(message))).entry;
  }

  /** What the promoted replica holds: the log up to `offset`, and the counter at `offset`. */
  async function rollBackTo(offset: number): Promise<void> {
    const keys = createRedisKeys(prefix);
    const [base, last] = (await redis.hmget(keys.meta(topic), "base", "offset")) as [string, string];
    const lost = Array.from({ length: Number(last) - offset }, (_, i) => `${base}-${offset + 1 + i}`);
    expect(await redis.xdel(keys.log(topic), ...lost)).toBe(lost.length);
    // The replica's stream never generated the lost ids either: its last id is the kept entry's.
    await redis.call("XSETID", keys.log(topic), `${base}-${offset}`);
    await redis.hset(keys.meta(topic), "offset", offset);
  }

  it("answers a cursor of a lost entry with an epoch_changed gap, past the head and once its offset is taken again", async () => {
    const published: Entry[] = [];
    for (let i = 1; i <= 5; i++) published.push(await publish(`m${i}`));
    // The cursors a client holds, as the services hand them out.
    const kept = decodeCursor(topic, encodeEntryCursor(topic, published[4]!));
    const before = decodeCursor(topic, encodeEntryCursor(topic, published[2]!));
    await rollBackTo(3);

    // Past the new head: the stream the cursor pointed into was rewritten.
    const ahead = await broker.read(topic, { after: kept }, 10);
    expect({ gap: ahead.gap, texts: ahead.entries.map(text), head: ahead.head }).toEqual({
      gap: "epoch_changed",
      texts: ["m1", "m2", "m3"],
      head: { epoch: kept.epoch, offset: 3 },
    });
    // Unstamped (a version 1 cursor), the same position is refused as before.
    const refused = await broker.read(topic, { after: { epoch: kept.epoch, offset: kept.offset } }, 10).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.InvalidArgument);

    // Two new messages take offsets 4 and 5: reading on after offset 5 would skip both silently.
    const taken = [await publish("n4"), await publish("n5")];
    expect(taken.map((entry) => entry.position)).toEqual([
      { epoch: kept.epoch, offset: 4 },
      { epoch: kept.epoch, offset: 5 },
    ]);
    const rewritten = await broker.read(topic, { after: kept }, 10);
    expect({ gap: rewritten.gap, texts: rewritten.entries.map(text) }).toEqual({ gap: "epoch_changed", texts: ["m1", "m2", "m3", "n4", "n5"] });
    // A cursor before the lost entries still names its entry: it reads on, without a gap.
    const intact = await broker.read(topic, { after: before }, 10);
    expect({ gap: intact.gap, texts: intact.entries.map(text) }).toEqual({ gap: undefined, texts: ["n4", "n5"] });
    // The new entries' own cursors read on too.
    const fresh = decodeCursor(topic, encodeEntryCursor(topic, taken[0]!));
    expect((await broker.read(topic, { after: fresh }, 10)).entries.map(text)).toEqual(["n5"]);

    // History pages: a page before a lost entry is a gap, as for a lost epoch.
    expect(await broker.readBefore(topic, kept, 10)).toEqual({ head: taken[1]!.position, entries: [], more: false, gap: "epoch_changed" });
    expect((await broker.readBefore(topic, before, 10)).entries.map(text)).toEqual(["m1", "m2"]);
  });
});
