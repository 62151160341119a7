import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import type { Position } from "../../src/broker/broker.js";
import { createRedisBroker, type RedisBroker } from "../../src/broker/redis/redis-broker.js";
import { subscribe } from "../../src/broker/subscription.js";
import type { SubscriptionEvent } from "../../src/broker/subscription-event.js";
import { createTopicHub } from "../../src/broker/topic-hub.js";
import {
  deleteKeys,
  killConnections,
  redisAvailable,
  redisServerAvailable,
  redisUrl,
  startPrivateRedis,
  uniquePrefix,
  until,
  type PrivateRedis,
} from "./test-redis.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (event: SubscriptionEvent) => (event.kind === "entry" ? new TextDecoder().decode(event.entry.data) : `gap:${event.reason}`);

/** Reads a subscription into an array until it ends; resolves with the error it ended with. */
function drain(events: AsyncIterable<SubscriptionEvent>, into: SubscriptionEvent[]): Promise<unknown> {
  return (async () => {
    for await (const event of events) into.push(event);
    return undefined;
  })().catch((error: unknown) => error);
}

describe.runIf(redisAvailable() && redisServerAvailable())("Redis broker: outages", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("while Redis is down: not ready, publishes and reads fail unavailable, subscribers end unavailable; after an empty restart it recovers with a new epoch", async () => {
    const redis: PrivateRedis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    const broker = await createRedisBroker({ url: redis.url, prefix: uniquePrefix() });
    cleanups.push(() => broker.close());

    const before = (await broker.publish("room", bytes("before"))).entry.position;
    const abort = new AbortController();
    cleanups.push(() => Promise.resolve(abort.abort()));
    const received: SubscriptionEvent[] = [];
    const ended = drain(
      subscribe(createTopicHub(broker), "room", { from: { after: { ...before, offset: 0 } }, policy: "lossless", bufferSize: 100, signal: abort.signal }),
      received,
    );
    await until(() => received.length === 1, "the replayed entry");

    await redis.stop();
    const failure = await ended;
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe(Code.Unavailable);
    expect(received.map(text)).toEqual(["before"]);
    expect(await broker.ready()).toBe(false);
    await expect(broker.publish("room", bytes("lost"))).rejects.toMatchObject({ code: Code.Unavailable });
    await expect(broker.read("room", { last: 1 }, 1)).rejects.toMatchObject({ code: Code.Unavailable });
    // A new subscriber is told too, instead of waiting on a dead feed.
    const late: SubscriptionEvent[] = [];
    const lateEnd = await drain(
      subscribe(createTopicHub(broker), "room", { from: { last: 0 }, policy: "lossless", bufferSize: 100, signal: abort.signal }),
      late,
    );
    expect((lateEnd as ConnectError).code).toBe(Code.Unavailable);

    await redis.start(); // empty: it kept nothing
    await until(() => broker.ready(), "the broker to reconnect by itself");
    const after = (await broker.publish("room", bytes("after"))).entry.position;
    expect(after.epoch).not.toBe(before.epoch);
    expect(after.offset).toBe(1);

    // Resuming from the old cursor: a gap, then the new log, then live.
    const resumed: SubscriptionEvent[] = [];
    const resumedEnd = drain(
      subscribe(createTopicHub(broker), "room", { from: { after: before }, policy: "lossless", bufferSize: 100, signal: abort.signal }),
      resumed,
    );
    await until(() => resumed.length === 2, "the gap and the new entry");
    await broker.publish("room", bytes("live"));
    await until(() => resumed.length === 3, "the live entry");
    expect(resumed.map(text)).toEqual(["gap:epoch_changed", "after", "live"]);
    abort.abort();
    await resumedEnd;
  });

  it("starts while Redis is down, not ready, and becomes ready by itself when Redis comes up", async () => {
    const redis: PrivateRedis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    await redis.stop();
    const broker = await createRedisBroker({ url: redis.url, prefix: uniquePrefix(), connectTimeoutMs: 200 });
    cleanups.push(() => broker.close());
    expect(await broker.ready()).toBe(false);
    await expect(broker.publish("room", bytes("early"))).rejects.toMatchObject({ code: Code.Unavailable });

    await redis.start();
    await until(() => broker.ready(), "the broker to connect by itself");
    const abort = new AbortController();
    cleanups.push(() => Promise.resolve(abort.abort()));
    const received: SubscriptionEvent[] = [];
    const ended = drain(subscribe(createTopicHub(broker), "room", { from: { last: 0 }, policy: "lossless", bufferSize: 100, signal: abort.signal }), received);
    // Live only: publish until the subscription (attached at some point) delivers, then once more.
    const published: string[] = [];
    while (received.length === 0) {
      published.push(`m${published.length + 1}`);
      await broker.publish("room", bytes(published.at(-1)!));
      await new Promise((resolve) => setImmediate(resolve));
    }
    published.push("last");
    await broker.publish("room", bytes("last"));
    await until(() => received.at(-1) !== undefined && text(received.at(-1)!) === "last", "the last entry");
    // From the first entry it saw, every later one in order.
    const texts = received.map(text);
    expect(texts).toEqual(published.slice(published.indexOf(texts[0]!)));
    abort.abort();
    await ended;
  });

  it("a subscriber cut off by a dropped connection resumes from its cursor with everything, exactly once", async () => {
    const prefix = uniquePrefix();
    const instanceId = `outage-${prefix.slice(-9, -1)}`;
    const broker: RedisBroker = await createRedisBroker({ url: redisUrl, prefix, instanceId });
    cleanups.push(async () => {
      await broker.close();
      await deleteKeys(prefix);
    });

    const abort = new AbortController();
    cleanups.push(() => Promise.resolve(abort.abort()));
    const { head } = await broker.read("room", { last: 0 }, 0);
    const first: SubscriptionEvent[] = [];
    const ended = drain(
      subscribe(createTopicHub(broker), "room", { from: { after: head }, policy: "lossless", bufferSize: 1000, signal: abort.signal }),
      first,
    );
    for (let i = 1; i <= 5; i++) await broker.publish("room", bytes(`m${i}`));
    await until(() => first.length === 5, "five live entries");

    // Kill this instance's connections (only them: others share this Redis), as a network blip would.
    expect(await killConnections(broker.connectionName)).toBe(2);
    const failure = await ended;
    expect((failure as ConnectError).code).toBe(Code.Unavailable);
    await until(() => broker.ready(), "the broker to reconnect by itself");
    for (let i = 6; i <= 8; i++) await broker.publish("room", bytes(`m${i}`));

    const last = first.at(-1);
    const cursor: Position = last?.kind === "entry" ? last.entry.position : head;
    const second: SubscriptionEvent[] = [];
    const secondEnd = drain(
      subscribe(createTopicHub(broker), "room", { from: { after: cursor }, policy: "lossless", bufferSize: 1000, signal: abort.signal }),
      second,
    );
    await until(() => second.length === 3, "the rest");
    expect([...first, ...second].map(text)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
    abort.abort();
    await secondEnd;
  });
});
