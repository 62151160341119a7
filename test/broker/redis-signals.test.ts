import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { createRedisBroker } from "../../src/broker/redis/redis-broker.js";
import { countConnections, deleteKeys, redisAvailable, redisServerAvailable, redisUrl, startPrivateRedis, uniquePrefix, until } from "./test-redis.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/**
 * Signals of the Redis broker (Pub/Sub beside the streams): across instances,
 * one SUBSCRIBE per channel and instance however many listeners, and an
 * outage that fails senders with `unavailable` and nothing else.
 */
describe.runIf(redisAvailable())("Redis broker: signals", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** How many connections are subscribed to a channel (PUBSUB NUMSUB), asked on a connection of the test's own. */
  async function subscribers(channel: string, url = redisUrl): Promise<number> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const reply = (await redis.call("PUBSUB", "NUMSUB", channel)) as [string, number];
      return Number(reply[1]);
    } finally {
      redis.disconnect();
    }
  }

  /** Signals `topic` from `from` until `heard` holds: a SUBSCRIBE may still be on its way when `listenSignals` returns. */
  async function signalUntil(from: Broker, topic: string, heard: () => boolean): Promise<void> {
    for (let attempt = 0; attempt < 200 && !heard(); attempt++) {
      await from.signal(topic, bytes("probe"));
      await until(heard, "a probe", 50).catch(() => undefined);
    }
    expect(heard()).toBe(true);
  }

  it("reach listeners on every instance sharing the prefix, over one subscription per channel and instance", async () => {
    const prefix = uniquePrefix();
    const a = await createRedisBroker({ url: redisUrl, prefix });
    const b = await createRedisBroker({ url: redisUrl, prefix });
    const elsewhere = await createRedisBroker({ url: redisUrl, prefix: uniquePrefix() });
    cleanups.push(async () => {
      await Promise.all([a.close(), b.close(), elsewhere.close()]);
      await deleteKeys(prefix);
    });
    // No listener yet: each instance holds its two connections only.
    expect(await countConnections(a.connectionName)).toBe(2);

    const onA: string[] = [];
    const onB: string[][] = [[], [], []];
    const onElsewhere: string[] = [];
    const stops = [
      a.listenSignals("room", (data) => onA.push(text(data))),
      ...onB.map((into) => b.listenSignals("room", (data) => into.push(text(data)))),
      elsewhere.listenSignals("room", (data) => onElsewhere.push(text(data))),
    ];
    await signalUntil(a, "room", () => onB.every((into) => into.length > 0) && onA.length > 0);
    const seen = [onA.length, ...onB.map((into) => into.length)];
    await b.signal("room", bytes("typing"));
    await until(() => onA.length > seen[0]! && onB.every((into, i) => into.length > seen[i + 1]!), "the signal on both instances");
    expect([onA.at(-1), ...onB.map((into) => into.at(-1))]).toEqual(["typing", "typing", "typing", "typing"]);
    // Another prefix is another deployment: it hears nothing.
    expect(onElsewhere).toEqual([]);
    // Three listeners on b, one on a: two subscribed connections, one per instance, and one more connection each.
    const channel = `${prefix}{room}:signals`;
    expect(await subscribers(channel)).toBe(2);
    expect(await countConnections(b.connectionName)).toBe(3);
    // Nothing stored: signals leave no key behind.
    const keys = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await keys.connect();
    expect(await keys.keys(`${prefix}*signal*`)).toEqual([]);
    keys.disconnect();

    // The last listener of an instance going unsubscribes it; the others stay.
    for (const stop of stops.slice(1, 4)) stop();
    await until(async () => (await subscribers(channel)) === 1, "b's UNSUBSCRIBE");
    stops[0]!();
    stops[4]!();
    await until(async () => (await subscribers(channel)) === 0, "a's UNSUBSCRIBE");
  });

  it.runIf(redisServerAvailable())("fail senders with unavailable while Redis is down, and flow again once it is back", async () => {
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    const broker = await createRedisBroker({ url: redis.url, prefix: uniquePrefix() });
    cleanups.push(() => broker.close());
    const heard: string[] = [];
    const stop = broker.listenSignals("room", (data) => heard.push(text(data)));
    cleanups.push(() => Promise.resolve(stop()));
    await signalUntil(broker, "room", () => heard.length > 0);

    await redis.stop();
    await expect(broker.signal("room", bytes("lost"))).rejects.toMatchObject({ code: Code.Unavailable });
    // Listening while Redis is down throws nothing either; it takes effect once Redis is back.
    const late: string[] = [];
    const stopLate = broker.listenSignals("other", (data) => late.push(text(data)));
    cleanups.push(() => Promise.resolve(stopLate()));

    await redis.start();
    await until(() => broker.ready(), "the broker to reconnect by itself");
    // ioredis subscribes again by itself: the listener from before the outage hears new signals.
    const before = heard.length;
    await signalUntil(broker, "room", () => heard.length > before);
    await signalUntil(broker, "other", () => late.length > 0);
    expect(heard).not.toContain("lost");
  });
});
