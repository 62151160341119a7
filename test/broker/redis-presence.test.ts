import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { createRedisBroker } from "../../src/broker/redis/redis-broker.js";
import { countConnections, deleteKeys, redisAvailable, redisUrl, uniquePrefix, until } from "./test-redis.js";

/** Records a topic's presence on one broker: the latest set, sorted and joined with commas. */
function watch(broker: Broker, topic: string) {
  let latest: string | undefined;
  const unwatch = broker.watchPresence(topic, (members) => (latest = [...members].sort().join(",")));
  return { latest: () => latest, unwatch };
}

/**
 * Presence of the Redis broker: shared by every instance of a prefix, one
 * user counted once across instances, and an instance that dies without a
 * word stops counting within its presence TTL.
 */
describe.runIf(redisAvailable())("Redis broker: presence", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("is shared by the instances of a prefix: a user present on one is seen on the other, once however many instances hold them", async () => {
    const prefix = uniquePrefix();
    const a = await createRedisBroker({ url: redisUrl, prefix });
    const b = await createRedisBroker({ url: redisUrl, prefix });
    const elsewhere = await createRedisBroker({ url: redisUrl, prefix: uniquePrefix() });
    cleanups.push(async () => {
      await Promise.all([a.close(), b.close(), elsewhere.close()]);
      await deleteKeys(prefix);
    });
    // Being present opens nothing; watching opens the Pub/Sub connection (shared with signals).
    const leaveAlice = b.enterPresence("room", "alice");
    expect(await countConnections(b.connectionName)).toBe(2);
    const onA = watch(a, "room");
    const onElsewhere = watch(elsewhere, "room");
    await until(() => onA.latest() === "alice", "alice, present on b, in a's list");
    expect(await countConnections(a.connectionName)).toBe(3);
    const leaveBob = b.enterPresence("room", "bob");
    await until(() => onA.latest() === "alice,bob", "bob joined on b");
    // Alice on a too: still one alice; she leaves when both instances let her go.
    const leaveAliceOnA = a.enterPresence("room", "alice");
    leaveAlice();
    leaveBob();
    await until(() => onA.latest() === "alice", "bob left, alice still present on a");
    leaveAliceOnA();
    await until(() => onA.latest() === "", "alice left everywhere");
    await until(() => onElsewhere.latest() === "", "another prefix's empty list");
    // The last member gone, the room's set is gone too.
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    expect(await redis.keys(`${prefix}*presence`)).toEqual([]);
    redis.disconnect();
    onA.unwatch();
    onElsewhere.unwatch();
  });

  it("stops counting an instance that went away without leaving within the presence TTL", async () => {
    const prefix = uniquePrefix();
    const presenceTtlMs = 1000;
    const watcher = await createRedisBroker({ url: redisUrl, prefix, presenceTtlMs });
    const dying = await createRedisBroker({ url: redisUrl, prefix, presenceTtlMs });
    cleanups.push(async () => {
      await Promise.all([watcher.close(), dying.close()]);
      await deleteKeys(prefix);
    });
    const onWatcher = watch(watcher, "room");
    const stays = watcher.enterPresence("room", "carol");
    dying.enterPresence("room", "dave");
    await until(() => onWatcher.latest() === "carol,dave", "dave, present on the other instance");
    // Closing drops the connections and the heartbeat without a ZREM: as a SIGKILL would.
    const gone = Date.now();
    await dying.close();
    await until(() => onWatcher.latest() === "carol", "dave expired");
    // The design bound is the TTL; the slack absorbs timers late on a loaded machine.
    expect(Date.now() - gone).toBeLessThan(presenceTtlMs * 3);
    // Carol, on a live instance, outlives several TTLs: the heartbeat keeps her.
    const kept = Date.now();
    await until(() => Date.now() - kept > presenceTtlMs * 2, "two TTLs");
    expect(onWatcher.latest()).toBe("carol");
    stays();
    await until(() => onWatcher.latest() === "", "carol left");
    onWatcher.unwatch();
  });
});
