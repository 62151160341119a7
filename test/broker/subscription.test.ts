import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { Broker, Entry, Listener } from "../../src/broker/broker.js";
import { createMemoryBroker } from "../../src/broker/memory.js";
import { subscribe } from "../../src/broker/subscription.js";
import type { SubscriptionEvent } from "../../src/broker/subscription-event.js";
import { createTopicHub } from "../../src/broker/topic-hub.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (event: SubscriptionEvent | undefined) => (event?.kind === "entry" ? new TextDecoder().decode(event.entry.data) : `gap:${event?.reason}`);

/** The memory broker with a live feed that loses every entry `drop` says to: as a flaky network feed would. */
function lossyFeed(broker: Broker, drop: (offset: number) => boolean): Broker {
  return {
    ...broker,
    listen(topic: string, listener: Listener) {
      return broker.listen(topic, {
        entry: (entry) => {
          if (!drop(entry.position.offset)) listener.entry(entry);
        },
        error: (error) => listener.error(error),
      });
    },
  };
}

describe("subscribe(): history, then live, exactly once and in order", () => {
  it("ends a lossless subscriber past its buffer with resource_exhausted, after what it holds", async () => {
    const broker = createMemoryBroker();
    const controller = new AbortController();
    const events = subscribe(createTopicHub(broker), "t", { from: { last: 0 }, policy: "lossless", bufferSize: 3, signal: controller.signal })[
      Symbol.asyncIterator
    ]();
    const first = events.next();
    await broker.publish("t", bytes("1"));
    expect(text((await first).value)).toBe("1");
    for (const n of ["2", "3", "4", "5", "6"]) await broker.publish("t", bytes(n)); // nobody reads
    expect([text((await events.next()).value), text((await events.next()).value), text((await events.next()).value)]).toEqual(["2", "3", "4"]);
    await expect(events.next()).rejects.toMatchObject({ code: 8 });
  });

  it("keeps only the newest pending entry for a conflated subscriber", async () => {
    const broker = createMemoryBroker();
    const events = subscribe(createTopicHub(broker), "job", { from: { last: 1 }, policy: "conflate", bufferSize: 1, signal: new AbortController().signal })[
      Symbol.asyncIterator
    ]();
    await broker.publish("job", bytes("s1"));
    expect(text((await events.next()).value)).toBe("s1");
    for (const n of ["s2", "s3", "s4", "done"]) await broker.publish("job", bytes(n));
    expect(text((await events.next()).value)).toBe("done");
    const pending = events.next();
    await broker.publish("job", bytes("after"));
    expect(text((await pending).value)).toBe("after");
  });

  it("fills holes in the live feed from the log", async () => {
    const memory = createMemoryBroker();
    const broker = lossyFeed(memory, (offset) => offset % 3 === 0);
    const events = subscribe(createTopicHub(broker), "t", { from: { last: 0 }, policy: "lossless", bufferSize: 100, signal: new AbortController().signal })[
      Symbol.asyncIterator
    ]();
    const first = events.next();
    for (let i = 1; i <= 10; i++) await broker.publish("t", bytes(String(i)));
    const received = [text((await first).value)];
    while (received.length < 10) received.push(text((await events.next()).value));
    expect(received).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
  });

  it("replays from a position in batches, then continues live", async () => {
    const broker = createMemoryBroker();
    const published = [];
    for (let i = 1; i <= 20; i++) published.push((await broker.publish("t", bytes(String(i)))).entry);
    const events = subscribe(createTopicHub(broker, 4), "t", {
      from: { after: published[4]!.position },
      policy: "lossless",
      bufferSize: 2,
      signal: new AbortController().signal,
    })[Symbol.asyncIterator]();
    const received: string[] = [];
    while (received.length < 15) received.push(text((await events.next()).value));
    expect(received).toEqual(Array.from({ length: 15 }, (_, i) => String(i + 6)));
    const live = events.next();
    await broker.publish("t", bytes("21"));
    expect(text((await live).value)).toBe("21");
  });

  it("replays a history longer than one read batch in full, then continues live", async () => {
    const broker = createMemoryBroker();
    for (let i = 1; i <= 12; i++) await broker.publish("t", bytes(String(i)));
    const events = subscribe(createTopicHub(broker, 4), "t", { from: { last: 10 }, policy: "lossless", bufferSize: 2, signal: new AbortController().signal })[
      Symbol.asyncIterator
    ]();
    const received: string[] = [];
    while (received.length < 10) received.push(text((await events.next()).value));
    expect(received).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 3)));
    const live = events.next();
    await broker.publish("t", bytes("13"));
    expect(text((await live).value)).toBe("13");
  });

  it("ends with the abort reason when its signal aborts", async () => {
    const broker = createMemoryBroker();
    const controller = new AbortController();
    const events = subscribe(createTopicHub(broker), "t", { from: { last: 0 }, policy: "lossless", bufferSize: 4, signal: controller.signal })[
      Symbol.asyncIterator
    ]();
    const pending = events.next();
    controller.abort(new ConnectError("server is shutting down", Code.Unavailable));
    await expect(pending).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("turns a live feed error into unavailable", async () => {
    const memory = createMemoryBroker();
    let fail: ((error: Error) => void) | undefined;
    const broker: Broker = {
      ...memory,
      listen(topic, listener) {
        fail = (error) => listener.error(error);
        return memory.listen(topic, listener);
      },
    };
    const events = subscribe(createTopicHub(broker), "t", { from: { last: 0 }, policy: "lossless", bufferSize: 4, signal: new AbortController().signal })[
      Symbol.asyncIterator
    ]();
    const pending = events.next();
    fail?.(new Error("connection lost"));
    await expect(pending).rejects.toMatchObject({ code: 14 });
  });

  it("holds at most one catch-up batch for a subscriber far behind: the next read waits until it is taken", async () => {
    const memory = createMemoryBroker();
    const reads: number[] = [];
    const broker: Broker = {
      ...memory,
      read(topic, from, limit) {
        reads.push(limit);
        return memory.read(topic, from, limit);
      },
    };
    const published: Entry[] = [];
    for (let i = 1; i <= 20; i++) published.push((await memory.publish("t", bytes(String(i)))).entry);
    const events = subscribe(createTopicHub(broker, 4), "t", {
      from: { after: { epoch: published[0]!.position.epoch, offset: 0 } },
      policy: "lossless",
      bufferSize: 2,
      signal: new AbortController().signal,
    })[Symbol.asyncIterator]();
    expect(text((await events.next()).value)).toBe("1");
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    const readsWhileHeld = reads.length; // the feed's start, and this subscriber's first batch
    for (const expected of ["2", "3"]) expect(text((await events.next()).value)).toBe(expected);
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(reads.length).toBe(readsWhileHeld);
    expect(text((await events.next()).value)).toBe("4"); // the batch is taken: the next read may go
    for (let i = 5; i <= 20; i++) expect(text((await events.next()).value)).toBe(String(i));
    expect(reads.length).toBeGreaterThan(readsWhileHeld);
    await events.return?.();
  });

  it("ends the iterator when return() is called, and detaches from the hub", async () => {
    const broker = createMemoryBroker();
    const hub = createTopicHub(broker);
    const events = subscribe(hub, "t", { from: { last: 0 }, policy: "lossless", bufferSize: 4, signal: new AbortController().signal })[Symbol.asyncIterator]();
    expect(hub.topics).toBe(1);
    expect(await events.return?.()).toEqual({ value: undefined, done: true });
    expect(hub.topics).toBe(0);
    expect(await events.next()).toEqual({ value: undefined, done: true });
  });
});
