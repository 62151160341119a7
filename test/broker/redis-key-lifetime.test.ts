// What a Redis topic leaves behind: reading or listening to a topic that has
// no message must not keep it for the whole retention age, or anyone could
// fill Redis with random room names; a topic with messages keeps its age.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { createRedisBroker } from "../../src/broker/redis/redis-broker.js";
import { emptyTopicTtlMs } from "../../src/broker/redis/scripts.js";
import { deleteKeys, redisAvailable, redisUrl, uniquePrefix } from "./test-redis.js";

describe.runIf(redisAvailable())("Redis key lifetimes", () => {
  const prefix = uniquePrefix();
  const day = 24 * 3600 * 1000;
  let broker: Broker;
  let redis: Redis;
  beforeAll(async () => {
    broker = await createRedisBroker({ url: redisUrl, prefix, retention: { maxCount: 100, maxAgeMs: day } });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    await broker.close();
    redis.disconnect();
    await deleteKeys(prefix);
  });

  const ttlOf = (topic: string) => redis.pttl(`${prefix}{${topic}}:meta`);

  it("keeps a topic that was only read for the short empty-topic ttl", async () => {
    await broker.read("never-published", { last: 10 }, 10);
    const ttl = await ttlOf("never-published");
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(emptyTopicTtlMs);
  });

  it("keeps a topic with messages for its retention age", async () => {
    await broker.publish("published", new TextEncoder().encode("x"));
    expect(await ttlOf("published")).toBeGreaterThan(emptyTopicTtlMs);
  });
});
