import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Broker, Listener, ReadFrom } from "../../src/broker/broker.js";
import { createMemoryBroker } from "../../src/broker/memory.js";
import type { SubscriptionEvent } from "../../src/broker/subscription-event.js";
import { createTopicHub, type HubSubscriber } from "../../src/broker/topic-hub.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (event: SubscriptionEvent) => (event.kind === "entry" ? new TextDecoder().decode(event.entry.data) : `gap:${event.reason}`);

/** The memory broker, counting live listeners and reads, with a live feed that loses what `drop` says. */
function instrumented(broker: Broker, drop: (offset: number) => boolean = () => false) {
  const counts = { listeners: 0, reads: 0 };
  const listeners = new Set<Listener>();
  const wrapped: Broker = {
    ...broker,
    read(topic, from, limit) {
      counts.reads++;
      return broker.read(topic, from, limit);
    },
    listen(topic, listener) {
      counts.listeners++;
      listeners.add(listener);
      const stop = broker.listen(topic, {
        entry: (entry) => {
          if (!drop(entry.position.offset)) listener.entry(entry);
        },
        error: (error) => listener.error(error),
      });
      return () => {
        counts.listeners--;
        listeners.delete(listener);
        stop();
      };
    },
  };
  return { broker: wrapped, counts, failFeeds: (error: Error) => [...listeners].forEach((l) => l.error(error)) };
}

/** A subscriber that records what it gets and can be awaited for a count of events. */
function recorder(from: ReadFrom, policy: "lossless" | "conflate" = "lossless") {
  const events: string[] = [];
  let failure: unknown;
  let waiter: { count: number; resolve: () => void } | undefined;
  const subscriber: HubSubscriber = {
    from,
    policy,
    event(event) {
      events.push(text(event));
      if (waiter && events.length >= waiter.count) waiter.resolve();
    },
    ready: () => undefined,
    fail(error) {
      failure = error;
      waiter?.resolve();
    },
  };
  return {
    subscriber,
    events,
    failure: () => failure,
    /** Resolves once `count` events arrived (or it failed). */
    received(count: number): Promise<void> {
      if (events.length >= count || failure !== undefined) return Promise.resolve();
      return new Promise((resolve) => (waiter = { count, resolve }));
    },
  };
}

/**
 * A broker whose log moves on while each read is in flight, and whose live feed
 * hears of it first: after each read, while `budget` lasts, one more entry is
 * published (the memory broker hands it to listeners at once) before the read's
 * result is returned. A steady publisher under load, with reads slower than
 * the publish interval, does the same to the Redis broker.
 */
function overtaking(broker: Broker, topic: string) {
  const state = { budget: 0, reads: 0, published: 0 };
  const wrapped: Broker = {
    ...broker,
    async read(t, from, limit) {
      state.reads++;
      const result = await broker.read(t, from, limit);
      if (state.budget > 0) {
        state.budget--;
        await broker.publish(topic, bytes(`live-${++state.published}`));
      }
      return result;
    },
  };
  return { broker: wrapped, state };
}

describe("topic hub: one live feed per topic, every subscriber exactly once and in order", () => {
  it("serves many subscribers from one listener and closes the feed with the last of them", async () => {
    const { broker, counts } = instrumented(createMemoryBroker());
    const hub = createTopicHub(broker);
    const subscribers = Array.from({ length: 50 }, () => recorder({ last: 0 }));
    const detach = subscribers.map((s) => hub.attach("room", s.subscriber));
    expect(counts.listeners).toBe(1);
    // Live only: wait until every subscriber has joined the feed, then publish.
    await broker.publish("room", bytes("warm-up"));
    await Promise.all(subscribers.map((s) => s.received(0)));
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (const n of ["1", "2", "3"]) await broker.publish("room", bytes(n));
    await Promise.all(subscribers.map((s) => s.received(3)));
    for (const s of subscribers) expect(s.events.filter((e) => e !== "warm-up")).toEqual(["1", "2", "3"]);
    detach.forEach((membership) => membership.detach());
    expect(hub.topics).toBe(0);
    expect(counts.listeners).toBe(0);
  });

  it("replays history to a late subscriber, then joins it to the feed without a repeat or a loss", async () => {
    const { broker } = instrumented(createMemoryBroker());
    const hub = createTopicHub(broker, 2); // small batches: the replay takes several reads
    const early = recorder({ last: 0 });
    hub.attach("room", early.subscriber);
    for (let i = 1; i <= 5; i++) await broker.publish("room", bytes(String(i)));
    const late = recorder({ last: 4 });
    hub.attach("room", late.subscriber);
    for (let i = 6; i <= 9; i++) await broker.publish("room", bytes(String(i))); // while the late one replays
    await late.received(8);
    expect(late.events).toEqual(["2", "3", "4", "5", "6", "7", "8", "9"]);
  });

  it("fills holes in the live feed from the log, once for every subscriber", async () => {
    const { broker, counts } = instrumented(createMemoryBroker(), (offset) => offset % 3 === 0);
    const hub = createTopicHub(broker);
    const subscribers = Array.from({ length: 20 }, () => recorder({ last: 0 }));
    subscribers.forEach((s) => hub.attach("t", s.subscriber));
    await new Promise<void>((resolve) => setImmediate(resolve));
    const readsBefore = counts.reads;
    for (let i = 1; i <= 10; i++) await broker.publish("t", bytes(String(i)));
    await Promise.all(subscribers.map((s) => s.received(10)));
    for (const s of subscribers) expect(s.events).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    // Three holes (3, 6, 9): the feed reads the log for them, not each subscriber.
    expect(counts.reads - readsBefore).toBeLessThanOrEqual(6);
  });

  it("gives a conflated subscriber the newest entry only, then follows live", async () => {
    const broker = createMemoryBroker();
    const hub = createTopicHub(broker);
    for (const n of ["s1", "s2", "s3"]) await broker.publish("job", bytes(n));
    const watcher = recorder({ last: 1 }, "conflate");
    hub.attach("job", watcher.subscriber);
    await watcher.received(1);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await broker.publish("job", bytes("done"));
    await watcher.received(2);
    expect(watcher.events).toEqual(["s3", "done"]);
  });

  it("answers a cursor from a lost epoch with a gap, then the retained entries", async () => {
    const broker = createMemoryBroker();
    const hub = createTopicHub(broker);
    await broker.publish("t", bytes("a"));
    const subscriber = recorder({ after: { epoch: "gone", offset: 7 } });
    hub.attach("t", subscriber.subscriber);
    await subscriber.received(2);
    expect(subscriber.events).toEqual(["gap:epoch_changed", "a"]);
  });

  it("fails every subscriber with unavailable when the live feed fails, and starts a fresh feed after", async () => {
    const { broker, failFeeds, counts } = instrumented(createMemoryBroker());
    const hub = createTopicHub(broker);
    const a = recorder({ last: 0 });
    const b = recorder({ last: 0 });
    hub.attach("t", a.subscriber);
    hub.attach("t", b.subscriber);
    failFeeds(new Error("connection lost"));
    for (const s of [a, b]) {
      expect(s.failure()).toBeInstanceOf(ConnectError);
      expect((s.failure() as ConnectError).code).toBe(Code.Unavailable);
    }
    expect(counts.listeners).toBe(0);
    const c = recorder({ last: 0 });
    hub.attach("t", c.subscriber);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await broker.publish("t", bytes("x"));
    await c.received(1);
    expect(c.events).toEqual(["x"]);
  });

  it("ends only the subscriber whose handler throws", async () => {
    const broker = createMemoryBroker();
    const hub = createTopicHub(broker);
    const good = recorder({ last: 0 });
    const bad = recorder({ last: 0 });
    bad.subscriber.event = () => {
      throw new Error("boom");
    };
    hub.attach("t", good.subscriber);
    hub.attach("t", bad.subscriber);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await broker.publish("t", bytes("1"));
    await broker.publish("t", bytes("2"));
    await good.received(2);
    expect(good.events).toEqual(["1", "2"]);
    expect((bad.failure() as Error).message).toBe("boom");
  });

  it("joins a subscriber that reads a new epoch the feed has not seen, without reading in a loop", async () => {
    // A log that loses its topic (Redis data flushed): reads see a new epoch at once,
    // the live feed hears of it only at the next publish, which never comes here.
    let epoch = "e1";
    let reads = 0;
    const memory = createMemoryBroker();
    const broker: Broker = {
      ...memory,
      async read(_topic, from, _limit) {
        reads++;
        const gap = "after" in from && from.after.epoch !== epoch ? ("epoch_changed" as const) : undefined;
        return { head: { epoch, offset: 0 }, entries: [], gap };
      },
      listen: () => () => undefined,
    };
    const hub = createTopicHub(broker);
    const first = recorder({ last: 0 });
    const watcher = recorder({ last: 1 }, "conflate");
    hub.attach("t", first.subscriber);
    hub.attach("t", watcher.subscriber);
    await new Promise<void>((resolve) => setImmediate(resolve));
    epoch = "e2";
    const second = recorder({ last: 0 });
    const third = recorder({ after: { epoch: "e1", offset: 0 } });
    hub.attach("t", second.subscriber);
    hub.attach("t", third.subscriber);
    await first.received(1);
    await third.received(1);
    // The feed read the new epoch once and told its live member; the newcomers joined.
    expect(first.events).toEqual(["gap:epoch_changed"]);
    // Conflated streams have no gaps (a job watch's next snapshot is simply the newest).
    expect(watcher.events).toEqual([]);
    expect(watcher.failure()).toBeUndefined();
    expect(third.events).toEqual(["gap:epoch_changed"]);
    expect(second.events).toEqual([]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(reads).toBeLessThan(12);
  });

  it("joins a subscriber whose every read is overtaken by the live feed, without chasing it read after read", async () => {
    // The stall of issue 11: a joiner reads to the log's head, but by the time its
    // result is handled the feed has dispatched a newer entry, so it read again,
    // and again, for as long as publishing went on.
    const { broker: base } = instrumented(createMemoryBroker());
    const { broker, state } = overtaking(base, "room");
    const hub = createTopicHub(broker);
    const early = recorder({ last: 0 });
    hub.attach("room", early.subscriber);
    await early.received(0);
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let i = 1; i <= 5; i++) await base.publish("room", bytes(String(i)));
    await early.received(5);
    state.budget = 50;
    state.reads = 0;
    const late = recorder({ last: 3 });
    hub.attach("room", late.subscriber);
    await late.received(4);
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    // One read of its own, then the entry that overtook it, from the feed; no read after that.
    expect(late.events).toEqual(["3", "4", "5", "live-1"]);
    expect(state.reads).toBe(1);
    expect(state.budget).toBe(49);
    await base.publish("room", bytes("6"));
    await late.received(5);
    expect(late.events.at(-1)).toBe("6");
    expect(early.events).toEqual(["1", "2", "3", "4", "5", "live-1", "6"]);
  });

  it("brings a feed whose every catch-up read is overtaken back in sequence, and joins the subscriber waiting for it", async () => {
    // The feed reads the log for a hole; while it reads, a newer entry arrives live.
    // The feed used to read again for that entry, so under a steady publish rate its
    // catch-up never ended, and joiners waited for it to end.
    const { broker: base } = instrumented(createMemoryBroker(), (offset) => offset === 6);
    const { broker, state } = overtaking(base, "room");
    const hub = createTopicHub(broker);
    const early = recorder({ last: 0 });
    hub.attach("room", early.subscriber);
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let i = 1; i <= 5; i++) await base.publish("room", bytes(String(i)));
    await early.received(5);
    state.budget = 50;
    state.reads = 0;
    await base.publish("room", bytes("6")); // lost by the live feed: the feed reads the log
    const late = recorder({ last: 2 });
    hub.attach("room", late.subscriber);
    await early.received(7);
    await late.received(3);
    for (let turn = 0; turn < 5; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
    // The feed's read and the joiner's, each overtaken once; no read after that.
    expect(state.reads).toBeLessThanOrEqual(2);
    const overtakers = Array.from({ length: state.published }, (_, i) => `live-${i + 1}`);
    expect(early.events).toEqual(["1", "2", "3", "4", "5", "6", ...overtakers]);
    expect(late.events).toEqual(["5", "6", ...overtakers]);
    await base.publish("room", bytes("7"));
    await late.received(3 + state.published);
    expect(late.events.at(-1)).toBe("7");
    expect(early.events.at(-1)).toBe("7");
  });

  it("keeps no recent entries while no subscriber is joining, and still hands an overtaken joiner each entry once", async () => {
    // `recent` is read only by joiners the feed overtook: kept for the life of the feed,
    // it held up to a batch of payloads per busy topic with nobody joining.
    const { broker: base } = instrumented(createMemoryBroker());
    const { broker, state } = overtaking(base, "room");
    const hub = createTopicHub(broker);
    const early = recorder({ last: 0 });
    hub.attach("room", early.subscriber);
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let i = 1; i <= 5; i++) await base.publish("room", bytes(String(i)));
    await early.received(5);
    expect(hub.inspect("room")).toEqual({ live: 1, joining: 0, recent: 0 });

    // A joiner whose read the feed overtakes (live-1 is dispatched while the read is in flight).
    state.budget = 1;
    state.reads = 0;
    const late = recorder({ last: 3 });
    hub.attach("room", late.subscriber);
    expect(hub.inspect("room")).toEqual({ live: 1, joining: 1, recent: 0 });
    await late.received(4);
    expect(late.events).toEqual(["3", "4", "5", "live-1"]);
    expect(state.reads).toBe(1); // live-1 came from `recent`, not from a second read
    expect(hub.inspect("room")).toEqual({ live: 2, joining: 0, recent: 0 });

    for (let i = 6; i <= 8; i++) await base.publish("room", bytes(String(i)));
    await late.received(7);
    expect(late.events).toEqual(["3", "4", "5", "live-1", "6", "7", "8"]);
    expect(early.events).toEqual(["1", "2", "3", "4", "5", "live-1", "6", "7", "8"]);
    expect(hub.inspect("room")).toEqual({ live: 2, joining: 0, recent: 0 });
  });

  it("hands every subscriber a contiguous run, whenever it attaches (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat(40), history: fc.nat(10) }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(30),
        async (joins, batch, overtakes) => {
          // Holes in the live feed, and reads the log overtakes while they are in flight.
          const { broker: lossy } = instrumented(createMemoryBroker(), (offset) => offset % 7 === 0);
          const { broker, state } = overtaking(lossy, "t");
          state.budget = overtakes;
          const hub = createTopicHub(broker, batch);
          const total = 40;
          let appended = 0; // entries in the log, overtaking ones included: offsets are 1..appended
          const subscribers: Array<{ from: number; rec: ReturnType<typeof recorder> }> = [];
          for (let i = 1; i <= total; i++) {
            for (const join of joins.filter((j) => j.at === i - 1)) {
              const rec = recorder({ last: join.history });
              subscribers.push({ from: Math.max(0, appended + state.published - join.history), rec });
              hub.attach("t", rec.subscriber);
            }
            await broker.publish("t", bytes(String(i)));
            appended++;
            if (i % 5 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
          }
          state.budget = 0;
          // The live feed drops every 7th offset, and only a later entry reveals the hole: end on one it keeps.
          while ((appended + state.published) % 7 === 0) {
            await broker.publish("t", bytes("end"));
            appended++;
          }
          const log = (await lossy.read("t", { last: 1000 }, 1000)).entries.map((entry) => text({ kind: "entry", entry }));
          expect(log).toHaveLength(appended + state.published);
          for (const { from, rec } of subscribers) {
            await rec.received(log.length - from);
            expect(rec.events).toEqual(log.slice(from));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
