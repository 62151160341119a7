import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Broker, Entry, Position, Retention } from "../../src/broker/broker.js";
import { entryStamp } from "../../src/broker/cursor.js";
import { subscribe } from "../../src/broker/subscription.js";
import type { SubscriptionEvent } from "../../src/broker/subscription-event.js";
import { createTopicHub } from "../../src/broker/topic-hub.js";

/** One broker under test, with a way to lose its data as a restart without persistence would. */
export interface BrokerUnderTest {
  readonly broker: Broker;
  /** Loses every stored message (restart, FLUSHALL) and returns the broker to use afterwards. */
  loseData(): Promise<Broker>;
  close(): Promise<void>;
}

export interface BrokerFactoryOptions {
  /** The broker's clock: tests move it to age messages. */
  readonly now: () => number;
  readonly retention?: Retention;
}

export type BrokerFactory = (options: BrokerFactoryOptions) => Promise<BrokerUnderTest>;

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const text = (entry: Entry) => new TextDecoder().decode(entry.data);
const offsets = (entries: readonly Entry[]) => entries.map((entry) => entry.position.offset);

/** Records a topic's live feed; `until(n)` waits for the n-th entry (or fails on the feed's error). */
function record(broker: Broker, topic: string) {
  const entries: Entry[] = [];
  let failure: Error | undefined;
  const waiters = new Set<() => void>();
  const unlisten = broker.listen(topic, {
    entry(entry) {
      entries.push(entry);
      for (const waiter of waiters) waiter();
    },
    error(error) {
      failure = error;
      for (const waiter of waiters) waiter();
    },
  });
  function until(count: number, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${topic}: ${entries.length} of ${count} entries`)), timeoutMs);
      const check = () => {
        if (failure) finish(failure);
        else if (entries.length >= count) finish();
      };
      function finish(error?: Error) {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve();
      }
      waiters.add(check);
      check();
    });
  }
  return { entries, until, unlisten };
}

/** Polls a condition of a recorder (signals have no feed to wait on in order), failing after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Records a topic's signals; `heard(n)` waits for the n-th. */
function recordSignals(broker: Broker, topic: string) {
  const signals: string[] = [];
  let waiter: (() => void) | undefined;
  const unlisten = broker.listenSignals(topic, (data) => {
    signals.push(new TextDecoder().decode(data));
    waiter?.();
  });
  function heard(count: number, timeoutMs = 10_000): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      const check = () => {
        if (signals.length >= count) finish(true);
      };
      function finish(ok: boolean) {
        clearTimeout(timer);
        waiter = undefined;
        resolve(ok);
      }
      waiter = check;
      check();
    });
  }
  return { signals, heard, unlisten };
}

/**
 * Sends probe signals until `recorder` heard one: a broker's subscription may
 * take effect after `listenSignals` returns (a SUBSCRIBE on its way to Redis),
 * and a signal sent before it is lost by design. Returns how many were sent.
 */
async function signalUntilHeard(broker: Broker, topic: string, recorder: ReturnType<typeof recordSignals>): Promise<number> {
  for (let sent = 1; sent <= 100; sent++) {
    await broker.signal(topic, bytes("probe"));
    if (await recorder.heard(1, 100)) return sent;
  }
  throw new Error(`${topic}: no signal heard`);
}

/** Records a topic's presence: every set the broker handed over, sorted, as arrays. */
function recordPresence(broker: Broker, topic: string) {
  const sets: string[][] = [];
  const unwatch = broker.watchPresence(topic, (members) => sets.push([...members].sort()));
  const latest = () => sets.at(-1);
  /** Waits until the latest set is `members` (sorted). */
  const reaches = (members: string[], what: string) => until(() => JSON.stringify(latest()) === JSON.stringify(members), what);
  return { sets, latest, reaches, unwatch };
}

/** Registers the shared broker contract: every Broker implementation must pass it unchanged. */
export function describeBrokerContract(name: string, factory: BrokerFactory): void {
  describe(`broker contract: ${name}`, () => {
    let clock = 0;
    let subject: BrokerUnderTest;
    let broker: Broker;
    const open = async (retention?: Retention) => {
      await subject.close();
      subject = await factory({ now: () => clock, retention });
      broker = subject.broker;
    };

    beforeEach(async () => {
      clock = Date.now();
      subject = await factory({ now: () => clock });
      broker = subject.broker;
    });
    afterEach(async () => {
      await subject.close();
    });

    it("appends in order with offsets 1, 2, 3 in one epoch, and reads them back", async () => {
      const published: Entry[] = [];
      for (const word of ["a", "b", "c"]) {
        clock += 1;
        published.push((await broker.publish("t", bytes(word))).entry);
      }
      expect(offsets(published)).toEqual([1, 2, 3]);
      expect(new Set(published.map((entry) => entry.position.epoch)).size).toBe(1);
      expect(published.map((entry) => entry.time)).toEqual([clock - 2, clock - 1, clock]);
      const result = await broker.read("t", { after: { epoch: published[0]!.position.epoch, offset: 0 } }, 10);
      expect(result.gap).toBeUndefined();
      expect(result.head).toEqual(published[2]!.position);
      expect(result.entries.map(text)).toEqual(["a", "b", "c"]);
      expect(result.entries.map((entry) => entry.position)).toEqual(published.map((entry) => entry.position));
      expect(result.entries.map((entry) => entry.time)).toEqual(published.map((entry) => entry.time));
    });

    it("keeps bytes exactly, empty and binary data included", async () => {
      const binary = new Uint8Array([0, 255, 10, 13, 0, 128]);
      await broker.publish("bin", binary);
      await broker.publish("bin", new Uint8Array(0));
      const { entries } = await broker.read("bin", { last: 2 }, 10);
      expect(entries.map((entry) => [...entry.data])).toEqual([[...binary], []]);
    });

    it("reads a topic never published to as empty, in the epoch its first publish then uses", async () => {
      const empty = await broker.read("fresh", { last: 5 }, 10);
      expect(empty.entries).toEqual([]);
      expect(empty.head.offset).toBe(0);
      const { entry } = await broker.publish("fresh", bytes("x"));
      expect(entry.position).toEqual({ epoch: empty.head.epoch, offset: 1 });
      const after = await broker.read("fresh", { after: empty.head }, 10);
      expect(after.gap).toBeUndefined();
      expect(after.entries.map(text)).toEqual(["x"]);
    });

    it("reads the last n, bounded by the limit", async () => {
      for (let i = 1; i <= 5; i++) await broker.publish("t", bytes(`m${i}`));
      expect((await broker.read("t", { last: 2 }, 10)).entries.map(text)).toEqual(["m4", "m5"]);
      expect((await broker.read("t", { last: 10 }, 10)).entries.map(text)).toEqual(["m1", "m2", "m3", "m4", "m5"]);
      expect((await broker.read("t", { last: 4 }, 3)).entries.map(text)).toEqual(["m3", "m4", "m5"]);
      expect((await broker.read("t", { last: 0 }, 10)).entries).toEqual([]);
    });

    it("reads after a position, in pages of the limit, and nothing after the head", async () => {
      const epoch = (await broker.publish("t", bytes("m1"))).entry.position.epoch;
      for (let i = 2; i <= 5; i++) await broker.publish("t", bytes(`m${i}`));
      expect(offsets((await broker.read("t", { after: { epoch, offset: 2 } }, 10)).entries)).toEqual([3, 4, 5]);
      expect(offsets((await broker.read("t", { after: { epoch, offset: 1 } }, 2)).entries)).toEqual([2, 3]);
      const atHead = await broker.read("t", { after: { epoch, offset: 5 } }, 10);
      expect(atHead.entries).toEqual([]);
      expect(atHead.gap).toBeUndefined();
      expect(atHead.head).toEqual({ epoch, offset: 5 });
    });

    it("rejects a position ahead of the log with invalid_argument", async () => {
      const { entry } = await broker.publish("t", bytes("m1"));
      const error = await broker.read("t", { after: { epoch: entry.position.epoch, offset: 2 } }, 10).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    });

    it("answers a trimmed position with a gap and the oldest retained entries", async () => {
      await open({ maxCount: 3, maxAgeMs: 3600_000 });
      let epoch = "";
      for (let i = 1; i <= 5; i++) epoch = (await broker.publish("t", bytes(`m${i}`))).entry.position.epoch;
      const trimmed = await broker.read("t", { after: { epoch, offset: 1 } }, 10);
      expect(trimmed.gap).toBe("trimmed");
      expect(offsets(trimmed.entries)).toEqual([3, 4, 5]);
      const exact = await broker.read("t", { after: { epoch, offset: 2 } }, 10);
      expect(exact.gap).toBeUndefined();
      expect(offsets(exact.entries)).toEqual([3, 4, 5]);
    });

    it("retains by the publish's own retention, which then applies to the topic", async () => {
      let epoch = "";
      for (let i = 1; i <= 4; i++) {
        epoch = (await broker.publish("t", bytes(`m${i}`), { retention: { maxCount: 2, maxAgeMs: 3600_000 } })).entry.position.epoch;
      }
      const result = await broker.read("t", { after: { epoch, offset: 0 } }, 10);
      expect(result.gap).toBe("trimmed");
      expect(offsets(result.entries)).toEqual([3, 4]);
    });

    it("drops messages by age, on publish and on read", async () => {
      const retention = { maxCount: 100, maxAgeMs: 1500 };
      const start = clock;
      const epoch = (await broker.publish("t", bytes("m1"), { retention })).entry.position.epoch;
      clock = start + 1000;
      await broker.publish("t", bytes("m2"), { retention });
      clock = start + 2000;
      await broker.publish("t", bytes("m3"), { retention });
      // m1 is 2000 ms old: gone. m2 is 1000 ms old: kept.
      expect(offsets((await broker.read("t", { last: 10 }, 10)).entries)).toEqual([2, 3]);
      clock = start + 2500; // m2 is now exactly 1500 ms old: gone on read
      const result = await broker.read("t", { after: { epoch, offset: 1 } }, 10);
      expect(result.gap).toBe("trimmed");
      expect(offsets(result.entries)).toEqual([3]);
      clock = start + 10_000;
      const aged = await broker.read("t", { after: { epoch, offset: 3 } }, 10);
      expect(aged).toEqual({ head: { epoch, offset: 3 }, entries: [] });
    });

    it("answers a position from another epoch with an epoch_changed gap", async () => {
      for (let i = 1; i <= 3; i++) await broker.publish("t", bytes(`m${i}`));
      const result = await broker.read("t", { after: { epoch: "another", offset: 2 } }, 2);
      expect(result.gap).toBe("epoch_changed");
      expect(offsets(result.entries)).toEqual([1, 2]);
    });

    it("checks a stamped position's entry: the same entry reads on; another entry there, or a position past the head, is an epoch_changed gap", async () => {
      const published: Entry[] = [];
      for (let i = 1; i <= 3; i++) {
        clock += 1;
        published.push((await broker.publish("t", bytes(`m${i}`))).entry);
      }
      // As an entry's cursor names it (cursor.ts): its position and the stamp of its append time.
      const stamped = (entry: Entry, time = entry.time): Position => ({ ...entry.position, stamp: entryStamp(time) });
      const second = published[1]!;
      const same = await broker.read("t", { after: stamped(second) }, 10);
      expect([offsets(same.entries), same.gap]).toEqual([[3], undefined]);
      const other = await broker.read("t", { after: stamped(second, second.time + 1) }, 2);
      expect([offsets(other.entries), other.gap]).toEqual([[1, 2], "epoch_changed"]);
      const ahead = await broker.read("t", { after: { ...stamped(published[2]!), offset: 4 } }, 10);
      expect([offsets(ahead.entries), ahead.gap]).toEqual([[1, 2, 3], "epoch_changed"]);
      // Unstamped, the same positions read as before: no entry to check, and ahead is invalid_argument.
      expect(offsets((await broker.read("t", { after: second.position }, 10)).entries)).toEqual([3]);
      const error = await broker.read("t", { after: { ...second.position, offset: 4 } }, 10).catch((e: unknown) => e);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
      // Backwards alike, with no entries after the gap (as for another epoch).
      expect(offsets((await broker.readBefore("t", stamped(second), 10)).entries)).toEqual([1]);
      const head = published[2]!.position;
      expect(await broker.readBefore("t", stamped(second, second.time + 1), 10)).toEqual({ head, entries: [], more: false, gap: "epoch_changed" });
      expect(await broker.readBefore("t", { ...stamped(published[2]!), offset: 4 }, 10)).toEqual({ head, entries: [], more: false, gap: "epoch_changed" });
    });

    it("answers a stamped position whose entry was trimmed as any trimmed position", async () => {
      const published: Entry[] = [];
      for (let i = 1; i <= 3; i++) published.push((await broker.publish("t", bytes(`m${i}`))).entry);
      await broker.removeHistory("t");
      await broker.publish("t", bytes("m4"));
      const first = published[0]!;
      // Nothing tells whether the trimmed entry was rewritten: the trim is the gap to report.
      const trimmed = await broker.read("t", { after: { ...first.position, stamp: entryStamp(first.time + 1) } }, 10);
      expect([trimmed.entries.map(text), trimmed.gap]).toEqual([["m4"], "trimmed"]);
    });

    it("starts a new epoch when its data is lost, and old positions then get a gap", async () => {
      const old = (await broker.publish("t", bytes("before"))).entry.position;
      broker = await subject.loseData();
      const { entry } = await broker.publish("t", bytes("after"));
      expect(entry.position.epoch).not.toBe(old.epoch);
      expect(entry.position.offset).toBe(1);
      const result = await broker.read("t", { after: old }, 10);
      expect(result.gap).toBe("epoch_changed");
      expect(result.entries.map(text)).toEqual(["after"]);
    });

    it("removes a topic's history: old positions get a trimmed gap, offsets go on, pages are empty, listeners stay", async () => {
      const live = record(broker, "t");
      let old = (await broker.publish("t", bytes("m1"))).entry.position;
      const first = old;
      for (let i = 2; i <= 3; i++) old = (await broker.publish("t", bytes(`m${i}`))).entry.position;
      await live.until(3);
      await broker.removeHistory("t");
      expect(await broker.read("t", { after: first }, 10)).toEqual({ head: old, entries: [], gap: "trimmed" });
      // At the head nothing was missed: no gap.
      expect(await broker.read("t", { after: old }, 10)).toEqual({ head: old, entries: [] });
      expect((await broker.read("t", { last: 10 }, 10)).entries).toEqual([]);
      expect(await broker.readBefore("t", undefined, 10)).toEqual({ head: old, entries: [], more: false });
      expect(await broker.readBefore("t", old, 10)).toEqual({ head: old, entries: [], more: false });
      const { entry } = await broker.publish("t", bytes("m4"));
      expect(entry.position).toEqual({ epoch: old.epoch, offset: 4 });
      const resumed = await broker.read("t", { after: first }, 10);
      expect(resumed.gap).toBe("trimmed");
      expect(resumed.entries.map(text)).toEqual(["m4"]);
      expect((await broker.read("t", { after: old }, 10)).entries.map(text)).toEqual(["m4"]);
      expect((await broker.readBefore("t", undefined, 10)).entries.map(text)).toEqual(["m4"]);
      await live.until(4);
      expect(offsets(live.entries)).toEqual([1, 2, 3, 4]);
      live.unlisten();
      // A topic never published to: nothing to remove, and still empty after.
      await broker.removeHistory("never");
      expect((await broker.read("never", { last: 10 }, 10)).entries).toEqual([]);
    });

    it("reads backwards in pages before a position, oldest first, saying whether older entries remain", async () => {
      const published: Entry[] = [];
      for (let i = 1; i <= 7; i++) published.push((await broker.publish("t", bytes(`m${i}`))).entry);
      const at = (offset: number) => published[offset - 1]!.position;
      const newest = await broker.readBefore("t", undefined, 3);
      expect(newest.head).toEqual(at(7));
      expect(newest.gap).toBeUndefined();
      expect(newest.entries.map(text)).toEqual(["m5", "m6", "m7"]);
      expect(newest.entries.map((entry) => entry.position)).toEqual([at(5), at(6), at(7)]);
      expect(newest.more).toBe(true);
      const middle = await broker.readBefore("t", at(5), 3);
      expect([offsets(middle.entries), middle.more]).toEqual([[2, 3, 4], true]);
      const oldest = await broker.readBefore("t", at(2), 3);
      expect([offsets(oldest.entries), oldest.more]).toEqual([[1], false]);
      // A page that ends exactly at the oldest entry says so: no empty page is needed to find out.
      const exact = await broker.readBefore("t", at(4), 3);
      expect([offsets(exact.entries), exact.more]).toEqual([[1, 2, 3], false]);
      const none = await broker.readBefore("t", at(1), 3);
      expect(none).toEqual({ head: at(7), entries: [], more: false });
      expect((await broker.readBefore("t", undefined, 10)).entries.map(text)).toEqual(published.map(text));
      const all = await broker.readBefore("t", undefined, 7);
      expect([all.entries.length, all.more]).toEqual([7, false]);
    });

    it("reads backwards from the head of a topic never published to as empty", async () => {
      const empty = await broker.readBefore("fresh", undefined, 5);
      expect(empty.entries).toEqual([]);
      expect(empty.more).toBe(false);
      expect(empty.head.offset).toBe(0);
      // The head of an empty log (offset 0) is a position too: nothing is before it.
      expect(await broker.readBefore("fresh", empty.head, 5)).toEqual({ head: empty.head, entries: [], more: false });
    });

    it("reads backwards no further than retention keeps, by count and by age", async () => {
      // An age far above the test's own duration: Redis expires the topic's keys by it, in real time.
      await open({ maxCount: 3, maxAgeMs: 60_000 });
      const start = clock;
      const published: Entry[] = [];
      for (let i = 1; i <= 5; i++) published.push((await broker.publish("t", bytes(`m${i}`))).entry);
      const at = (offset: number) => published[offset - 1]!.position;
      const newest = await broker.readBefore("t", undefined, 2);
      expect([offsets(newest.entries), newest.more]).toEqual([[4, 5], true]);
      const last = await broker.readBefore("t", at(4), 2);
      expect([offsets(last.entries), last.more]).toEqual([[3], false]);
      // A position retention dropped is still a position: nothing retained is older.
      expect(await broker.readBefore("t", at(2), 2)).toEqual({ head: at(5), entries: [], more: false });
      clock = start + 30_000;
      published.push((await broker.publish("t", bytes("m6"))).entry); // count keeps m4..m6
      clock = start + 60_000; // m4 and m5 are now exactly 60 s old: gone on read
      const aged = await broker.readBefore("t", undefined, 10);
      expect([offsets(aged.entries), aged.more]).toEqual([[6], false]);
      expect(await broker.readBefore("t", at(6), 10)).toEqual({ head: at(6), entries: [], more: false });
    });

    it("rejects a position ahead of the log with invalid_argument when reading backwards", async () => {
      const { entry } = await broker.publish("t", bytes("m1"));
      const error = await broker.readBefore("t", { epoch: entry.position.epoch, offset: 2 }, 10).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    });

    it("answers a position from another epoch with an epoch_changed gap and no entries when reading backwards", async () => {
      const old = (await broker.publish("t", bytes("before"))).entry.position;
      const other = await broker.readBefore("t", { epoch: "another", offset: 1 }, 10);
      expect(other).toEqual({ head: old, entries: [], more: false, gap: "epoch_changed" });
      broker = await subject.loseData();
      const { entry } = await broker.publish("t", bytes("after"));
      const lost = await broker.readBefore("t", old, 10);
      expect(lost).toEqual({ head: entry.position, entries: [], more: false, gap: "epoch_changed" });
      // From the newest, the new log reads as any other.
      expect((await broker.readBefore("t", undefined, 10)).entries.map(text)).toEqual(["after"]);
    });

    it("deduplicates a key within its ttl, returning the original entry", async () => {
      const dedupe = { key: "k1", ttlMs: 60_000 };
      const first = await broker.publish("t", bytes("original"), { dedupe });
      const again = await broker.publish("t", bytes("retry"), { dedupe });
      expect(first.duplicate).toBe(false);
      expect(again.duplicate).toBe(true);
      expect(again.entry.position).toEqual(first.entry.position);
      expect(new TextDecoder().decode(again.entry.data)).toBe("original");
      const other = await broker.publish("t", bytes("other"), { dedupe: { key: "k2", ttlMs: 60_000 } });
      expect(other.entry.position.offset).toBe(2);
      expect((await broker.read("t", { last: 10 }, 10)).entries.map(text)).toEqual(["original", "other"]);
      clock += 60_000; // the key expires
      const later = await broker.publish("t", bytes("later"), { dedupe });
      expect(later.duplicate).toBe(false);
      expect(later.entry.position.offset).toBe(3);
    });

    it("scopes dedupe keys to their topic", async () => {
      const dedupe = { key: "same", ttlMs: 60_000 };
      const a = await broker.publish("a", bytes("in a"), { dedupe });
      const b = await broker.publish("b", bytes("in b"), { dedupe });
      expect(b.duplicate).toBe(false);
      expect(new TextDecoder().decode(b.entry.data)).toBe("in b");
      expect(a.entry.position.epoch).not.toBe(b.entry.position.epoch);
    });

    it("appends once for concurrent publishes with the same key", async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => broker.publish("t", bytes(`try ${i}`), { dedupe: { key: "once", ttlMs: 60_000 } })),
      );
      expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
      expect(new Set(results.map((result) => result.entry.position.offset))).toEqual(new Set([1]));
      expect((await broker.read("t", { last: 100 }, 100)).entries).toHaveLength(1);
    });

    it("appends at an expected head only, else rejects with aborted and appends nothing", async () => {
      const first = (await broker.publish("t", bytes("v1"))).entry.position;
      const second = await broker.publish("t", bytes("v2"), { expectHead: first });
      expect(second.entry.position).toEqual({ epoch: first.epoch, offset: 2 });
      for (const stale of [first, { epoch: "another", offset: 2 }]) {
        const error = await broker.publish("t", bytes("lost update"), { expectHead: stale }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.Aborted);
      }
      // Of racing updates from the same head, exactly one lands.
      const raced = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => broker.publish("t", bytes(`v3-${i}`), { expectHead: second.entry.position })),
      );
      expect(raced.filter((result) => result.status === "fulfilled")).toHaveLength(1);
      expect(offsets((await broker.read("t", { last: 10 }, 10)).entries)).toEqual([1, 2, 3]);
    });

    it("feeds listeners live entries in order, and stops at unlisten", async () => {
      const first = record(broker, "t");
      const second = record(broker, "t");
      for (let i = 1; i <= 50; i++) await broker.publish("t", bytes(`m${i}`));
      await Promise.all([first.until(50), second.until(50)]);
      expect(offsets(first.entries)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(second.entries.map(text)).toEqual(first.entries.map(text));
      first.unlisten();
      await broker.publish("t", bytes("m51"));
      await second.until(51);
      expect(first.entries).toHaveLength(50);
      second.unlisten();
    });

    it("delivers signals live to every listener of the topic and no other, stores nothing, and stops at unlisten", async () => {
      await broker.publish("room", bytes("message"));
      const [first, second, other] = [recordSignals(broker, "room"), recordSignals(broker, "room"), recordSignals(broker, "other")];
      await signalUntilHeard(broker, "room", first);
      await signalUntilHeard(broker, "room", second);
      // Probes may still arrive late: what follows is compared without them.
      const real = (recorder: ReturnType<typeof recordSignals>) => recorder.signals.filter((signal) => signal !== "probe");
      const binary = new Uint8Array([0, 255, 10]);
      await broker.signal("room", bytes("typing"));
      await broker.signal("room", binary);
      const both = ["typing", new TextDecoder().decode(binary)];
      await until(() => real(first).length === 2 && real(second).length === 2, "both signals on both listeners");
      expect(real(first)).toEqual(both);
      expect(real(second)).toEqual(both);
      // Never in the log: the topic holds its one message, at offset 1, and nothing more.
      const { head, entries } = await broker.read("room", { last: 10 }, 10);
      expect(entries.map(text)).toEqual(["message"]);
      expect(head.offset).toBe(1);
      // A signal is not an entry for the live feed either.
      const feed = record(broker, "room");
      first.unlisten();
      await broker.signal("room", bytes("after"));
      await broker.publish("room", bytes("next"));
      await feed.until(1);
      expect(feed.entries.map(text)).toEqual(["next"]);
      await until(() => real(second).length === 3, "the signal after first stopped");
      expect(real(second).at(-1)).toBe("after");
      expect(real(first)).toEqual(both);
      expect(other.signals).toEqual([]);
      feed.unlisten();
      second.unlisten();
      other.unlisten();
    });

    it("keeps a topic's signals flowing while some listeners come and go, and counts each listening apart", async () => {
      const stays = recordSignals(broker, "t");
      await signalUntilHeard(broker, "t", stays);
      const handler = () => undefined;
      // The same function twice is two listenings; stopping one twice stops only it.
      const a = broker.listenSignals("t", handler);
      const b = broker.listenSignals("t", handler);
      a();
      a();
      b();
      await broker.signal("t", bytes("still"));
      await until(() => stays.signals.includes("still"), "the signal after the others left");
      stays.unlisten();
      // Listening again after everyone left works as the first time.
      const again = recordSignals(broker, "t");
      await signalUntilHeard(broker, "t", again);
      again.unlisten();
    });

    it("watches presence: the current members first, then each change, one user's presences counting once", async () => {
      const alice = broker.enterPresence("room", "alice");
      const watcher = recordPresence(broker, "room");
      await watcher.reaches(["alice"], "the current members");
      const bob = broker.enterPresence("room", "bob");
      await watcher.reaches(["alice", "bob"], "bob joined");
      // A second presence of alice (another tab): still one member, until both ended.
      const aliceAgain = broker.enterPresence("room", "alice");
      alice();
      alice(); // ending one twice ends only it
      bob();
      await watcher.reaches(["alice"], "bob left, alice still present");
      aliceAgain();
      await watcher.reaches([], "alice's last presence ended");
      // Every set handed over is a change: the same set twice would be no news.
      for (let index = 1; index < watcher.sets.length; index++) expect(watcher.sets[index]).not.toEqual(watcher.sets[index - 1]);
      expect(watcher.sets.every((set) => !set.includes("bob") || set.includes("alice"))).toBe(true);
      watcher.unwatch();
    });

    it("keeps presence per topic, and stops a watcher at unwatch while others go on", async () => {
      const first = recordPresence(broker, "a");
      const second = recordPresence(broker, "a");
      const other = recordPresence(broker, "b");
      await first.reaches([], "a's empty list");
      await second.reaches([], "a's empty list, second watcher");
      await other.reaches([], "b's empty list");
      const carol = broker.enterPresence("a", "carol");
      await first.reaches(["carol"], "carol in a");
      await second.reaches(["carol"], "carol in a, second watcher");
      first.unwatch();
      const seen = first.sets.length;
      carol();
      await second.reaches([], "carol left a");
      expect(first.sets.length).toBe(seen);
      expect(other.sets.every((set) => set.length === 0)).toBe(true);
      // Watching again after everyone left starts with the current list, as the first time.
      const dave = broker.enterPresence("a", "dave");
      const again = recordPresence(broker, "a");
      await again.reaches(["dave"], "the list for a new watcher");
      dave();
      await again.reaches([], "dave left");
      second.unwatch();
      other.unwatch();
      again.unwatch();
    });

    it("keeps many topics apart, live and in history", async () => {
      const topics = Array.from({ length: 100 }, (_, i) => `many/${i}`);
      const recorders = topics.map((topic) => record(broker, topic));
      for (let round = 1; round <= 3; round++) {
        await Promise.all(topics.map((topic) => broker.publish(topic, bytes(`${topic}#${round}`))));
      }
      await Promise.all(recorders.map((recorder) => recorder.until(3)));
      for (const [i, topic] of topics.entries()) {
        expect(recorders[i]!.entries.map(text)).toEqual([1, 2, 3].map((round) => `${topic}#${round}`));
        expect(offsets((await broker.read(topic, { last: 10 }, 10)).entries)).toEqual([1, 2, 3]);
        recorders[i]!.unlisten();
      }
    });

    it("subscribes with replay then live, every entry once and in order while publishing goes on", async () => {
      for (let i = 1; i <= 20; i++) await broker.publish("t", bytes(`m${i}`));
      const { head } = await broker.read("t", { last: 0 }, 0);
      const abort = new AbortController();
      const events: SubscriptionEvent[] = [];
      const consumed = (async () => {
        const from = { after: { epoch: head.epoch, offset: 5 } };
        for await (const event of subscribe(createTopicHub(broker, 7), "t", { from, policy: "lossless", bufferSize: 10_000, signal: abort.signal })) {
          events.push(event);
          if (event.kind === "entry" && event.entry.position.offset === 220) abort.abort();
        }
      })().catch((error: unknown) => {
        // Aborting ends the subscription with the abort reason.
        if (!abort.signal.aborted) throw error;
      });
      for (let i = 21; i <= 220; i++) await broker.publish("t", bytes(`m${i}`));
      await consumed;
      expect(events.every((event) => event.kind === "entry")).toBe(true);
      expect(events.map((event) => (event.kind === "entry" ? event.entry.position.offset : 0))).toEqual(Array.from({ length: 215 }, (_, i) => i + 6));
    });
  });
}
