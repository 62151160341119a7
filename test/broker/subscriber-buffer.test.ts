import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createSubscriberBuffer } from "../../src/broker/subscriber-buffer.js";
import type { SlowConsumerPolicy, SubscriptionEvent } from "../../src/broker/subscription-event.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const entry = (offset: number): SubscriptionEvent => ({ kind: "entry", entry: { position: { epoch: "e", offset }, data: bytes(String(offset)), time: 0 } });
const offsetOf = (event: SubscriptionEvent) => (event.kind === "entry" ? event.entry.position.offset : -1);
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A consumer whose congestion the test switches, as a connection's socket would be. */
function consumer(policy: SlowConsumerPolicy, bufferSize: number) {
  const taken: number[] = [];
  const failures: unknown[] = [];
  let congested = false;
  let drain: (() => void) | undefined;
  let throwOn: number | undefined;
  const buffer = createSubscriberBuffer<number>({
    from: { last: 0 },
    policy,
    bufferSize,
    itemOf: offsetOf,
    take(item) {
      if (item === throwOn) throw new Error(`cannot take ${item}`);
      taken.push(item);
    },
    congested: () => congested,
    drained: () => new Promise<void>((resolve) => (drain = resolve)),
    fail: (error) => failures.push(error),
  });
  return {
    buffer,
    taken,
    failures,
    congest: () => (congested = true),
    /** Uncongested, as a socket that drained: held items flow on the next turn. */
    async drain() {
      congested = false;
      drain?.();
      await turn();
    },
    throwOn: (item: number) => (throwOn = item),
  };
}

describe("createSubscriberBuffer: one slow-consumer policy for sinks and iterators", () => {
  it("hands items straight to a free consumer, holds them while it is congested, then delivers them in order", async () => {
    const c = consumer("lossless", 10);
    c.buffer.subscriber.event(entry(1), false);
    c.congest();
    for (const offset of [2, 3, 4]) c.buffer.subscriber.event(entry(offset), false);
    expect(c.taken).toEqual([1]);
    expect(c.buffer.size).toBe(3);
    await c.drain();
    expect(c.taken).toEqual([1, 2, 3, 4]);
    expect(c.buffer.size).toBe(0);
  });

  it("ends a lossless subscriber with resource_exhausted one live item past its buffer", () => {
    const c = consumer("lossless", 2);
    c.congest();
    for (const offset of [1, 2]) c.buffer.subscriber.event(entry(offset), false);
    const tooSlow = new ConnectError("subscriber too slow: buffer full; resume from the last cursor", Code.ResourceExhausted);
    expect(() => c.buffer.subscriber.event(entry(3), false)).toThrow(tooSlow);
    expect(c.buffer.size).toBe(2);
  });

  it("holds a whole catch-up batch, whatever its buffer: the hub sends one only when ready() says so", () => {
    const c = consumer("lossless", 2);
    c.congest();
    for (const offset of [1, 2, 3, 4]) c.buffer.subscriber.event(entry(offset), true);
    expect(c.buffer.size).toBe(4);
    expect(() => c.buffer.subscriber.event(entry(5), false)).toThrow(ConnectError);
  });

  it("keeps only the newest held item for a conflated subscriber", async () => {
    const c = consumer("conflate", 1);
    c.congest();
    for (const offset of [1, 2, 3, 4]) c.buffer.subscriber.event(entry(offset), false);
    expect(c.buffer.size).toBe(1);
    await c.drain();
    expect(c.taken).toEqual([4]);
  });

  it("says a catch-up batch may come only once everything held was taken", async () => {
    const c = consumer("lossless", 10);
    expect(c.buffer.subscriber.ready()).toBeUndefined();
    c.congest();
    for (const offset of [1, 2, 3]) c.buffer.subscriber.event(entry(offset), true);
    let ready = false;
    void c.buffer.subscriber.ready()?.then(() => (ready = true));
    c.buffer.flush();
    await turn();
    expect(ready).toBe(false);
    await c.drain();
    expect(c.taken).toEqual([1, 2, 3]);
    expect(ready).toBe(true);
    expect(c.buffer.subscriber.ready()).toBeUndefined();
  });

  it("lets a waiting hub go and takes nothing more once closed", async () => {
    const c = consumer("lossless", 10);
    c.congest();
    c.buffer.subscriber.event(entry(1), true);
    const ready = c.buffer.subscriber.ready();
    c.buffer.close();
    await ready;
    c.buffer.subscriber.event(entry(2), false);
    await c.drain();
    expect(c.taken).toEqual([]);
    expect(c.buffer.size).toBe(0);
  });

  it("fails the subscription when the consumer throws while held items drain", async () => {
    const c = consumer("lossless", 10);
    c.congest();
    for (const offset of [1, 2, 3]) c.buffer.subscriber.event(entry(offset), false);
    c.throwOn(2);
    await c.drain();
    expect(c.taken).toEqual([1]);
    expect(c.failures).toEqual([new Error("cannot take 2")]);
  });
});
