import calculateSlot from "cluster-key-slot";
import { afterEach, describe, expect, it } from "vitest";
import type { Entry } from "../../src/broker/broker.js";
import { createRedisKeys } from "../../src/broker/redis/keys.js";
import { createRedisBroker } from "../../src/broker/redis/redis-broker.js";
import { clusterAvailable, masterPorts, sharedClusterUrl, withNode } from "./test-cluster.js";
import { deleteKeys, uniquePrefix, until } from "./test-redis.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (entry: Entry) => new TextDecoder().decode(entry.data);

/** The port of the master serving a slot now. */
async function ownerOf(slot: number, anyPort: number): Promise<number> {
  const ranges = (await withNode(anyPort, (redis) => redis.call("CLUSTER", "SLOTS"))) as [number, number, [string, number]][];
  const range = ranges.find(([first, last]) => slot >= first && slot <= last);
  if (!range) throw new Error(`slot ${slot} is not served`);
  return range[2][1];
}

/**
 * Moves one slot from its master to another as `redis-cli --cluster reshard`
 * does: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys
 * in batches until none is left, then SETSLOT NODE on both (and the other
 * masters, so none answers with the old owner).
 */
async function migrateSlot(slot: number, from: number, to: number, masters: readonly number[]): Promise<number> {
  const toId = String(await withNode(to, (redis) => redis.call("CLUSTER", "MYID")));
  const fromId = String(await withNode(from, (redis) => redis.call("CLUSTER", "MYID")));
  await withNode(to, (redis) => redis.call("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId));
  await withNode(from, (redis) => redis.call("CLUSTER", "SETSLOT", slot, "MIGRATING", toId));
  let moved = 0;
  await withNode(from, async (redis) => {
    for (;;) {
      const keys = (await redis.call("CLUSTER", "GETKEYSINSLOT", slot, 100)) as string[];
      if (keys.length === 0) break;
      await redis.call("MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", ...keys);
      moved += keys.length;
    }
  });
  for (const port of [to, from, ...masters.filter((port) => port !== to && port !== from)]) {
    await withNode(port, (redis) => redis.call("CLUSTER", "SETSLOT", slot, "NODE", toId));
  }
  return moved;
}

describe.runIf(clusterAvailable())("Redis broker on Redis Cluster: a slot migrating", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("a listener of a topic whose slot moves to another master while it is published to gets every entry once, in order, with no error", async () => {
    const url = sharedClusterUrl!;
    const prefix = uniquePrefix();
    const topic = "migrating";
    const slot = calculateSlot(createRedisKeys(prefix).log(topic));
    const masters = await masterPorts(url);
    const source = await ownerOf(slot, masters[0]!);
    const target = masters.find((port) => port !== source)!;
    const publisher = await createRedisBroker({ url, prefix });
    const listener = await createRedisBroker({ url, prefix });
    cleanups.push(async () => {
      await publisher.close();
      await listener.close();
      await deleteKeys(prefix, url);
    });

    await publisher.publish(topic, bytes("m0"));
    const received: Entry[] = [];
    const errors: Error[] = [];
    const unlisten = listener.listen(topic, { entry: (entry) => received.push(entry), error: (error) => errors.push(error) });
    cleanups.push(() => Promise.resolve(unlisten()));
    // Listening from here: the live feed starts after the head read now.
    const { head } = await listener.read(topic, { last: 0 }, 0);
    expect(head.offset).toBe(1);

    const total = 300;
    let published = 0;
    const publishing = (async () => {
      for (let i = 1; i <= total; i++) {
        await publisher.publish(topic, bytes(`m${i}`));
        published = i;
      }
    })();
    await until(() => published >= 50, "50 publishes before the migration");
    const moved = await migrateSlot(slot, source, target, masters);
    const migratedAt = published;
    console.info(`slot ${slot}: ${moved} keys moved from :${source} to :${target} between publishes 50 and ${migratedAt} of ${total}`);
    await publishing;
    await until(() => received.length >= total || errors.length > 0, "every entry live");

    expect(moved).toBeGreaterThanOrEqual(2); // the topic's meta and log at least
    expect(migratedAt).toBeLessThan(total); // the migration happened while publishing
    expect(errors).toEqual([]);
    expect(received.map(text)).toEqual(Array.from({ length: total }, (_, i) => `m${i + 1}`));
    expect(received.map((entry) => entry.position.offset)).toEqual(Array.from({ length: total }, (_, i) => i + 2));
    expect(await ownerOf(slot, masters[0]!)).toBe(target);
    // History is whole on the new master too.
    expect((await listener.read(topic, { after: { epoch: head.epoch, offset: 0 } }, 1000)).entries.map(text)).toEqual(
      Array.from({ length: total + 1 }, (_, i) => `m${i}`),
    );
  });
});
