import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import type { Listener } from "../broker.js";
import { parseStreamEntry, streamEntryId, type RawStreamEntry } from "./entry.js";
import type { RedisKeys } from "./keys.js";
import { emptyTopicTtlMs, type RedisScriptCommands } from "./scripts.js";

/** What the live reader needs: its two connections (one shared, one its own) and the key layout. */
export interface RedisLiveReaderOptions {
  /** The shared command connection: starting topics and waking the reader. */
  readonly command: Redis & RedisScriptCommands;
  /** A connection only this reader uses: it spends its life blocked in XREAD. */
  readonly blocking: Redis;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  /** Longest XREAD wait; new topics interrupt it, so this only bounds idle round trips. */
  readonly blockMs?: number;
  /** Most entries read per topic per XREAD. */
  readonly batch?: number;
  /** How often topics with listeners are kept from expiring. */
  readonly touchIntervalMs?: number;
  /** Stops the reader: its loop ends, its timer and connection listeners are released. */
  readonly signal: AbortSignal;
}

/** The live side of the Redis broker: one reader for every topic this instance listens to. */
export interface RedisLiveReader {
  listen(topic: string, listener: Listener): () => void;
}

interface ActiveTopic {
  readonly metaKey: string;
  readonly logKey: string;
  readonly listeners: Set<Listener>;
  /** The id of the last entry read; undefined until the start is known. */
  cursor: string | undefined;
  starting: boolean;
}

/**
 * Reads every active topic of this instance with one blocking `XREAD` on one
 * connection, and fans each entry out to the topic's local listeners (one
 * Entry object shared by all, so it is decoded and encoded once). Adding a
 * topic opens nothing: its start id is fetched on the command connection and
 * an entry on this instance's wake stream ends the current XREAD, which then
 * restarts with the new topic set. The wake stream is read by id like the
 * topics, so a wake-up sent before the XREAD reached Redis is not lost.
 *
 * The start id is fetched when `listen` is called, before the subscriber
 * reads the log on the same connection, so every entry after that read is
 * also delivered live. If the blocking connection fails, every listener gets
 * `unavailable` and subscriptions end; the cursors stay, so after a reconnect
 * the reader resumes where it stopped.
 */
export function createRedisLiveReader(options: RedisLiveReaderOptions): RedisLiveReader {
  const { command, blocking, keys } = options;
  const blockMs = options.blockMs ?? 10_000;
  const batch = options.batch ?? 512;
  const wakeKey = keys.wake(options.instanceId);
  const topics = new Map<string, ActiveTopic>(); // by log key
  let wakeCursor = "0-0";
  let blocked = false;
  let wakeQueued = false;
  const { signal } = options;
  /** Resolves the loop's current wait (idle, reconnecting, backing off). */
  let interrupt: (() => void) | undefined;

  const touch = keepTopicsAlive(command, topics, options.touchIntervalMs ?? 10_000);

  const restart = () => {
    for (const state of topics.values()) if (state.cursor === undefined && !state.starting) start(state);
  };
  command.on("ready", restart);
  const onBlockingReady = () => interrupt?.();
  blocking.on("ready", onBlockingReady);

  function start(state: ActiveTopic): void {
    state.starting = true;
    command.rivuletTouch(state.metaKey, state.logKey, String(emptyTopicTtlMs)).then(
      (id) => {
        state.starting = false;
        if (topics.get(state.logKey) !== state) return;
        state.cursor ??= id;
        wake();
      },
      (error: unknown) => {
        state.starting = false;
        if (topics.get(state.logKey) === state) fail(state.listeners, error);
      },
    );
  }

  function wake(): void {
    if (interrupt) {
      interrupt();
      return;
    }
    if (!blocked || wakeQueued) return;
    wakeQueued = true;
    queueMicrotask(() => {
      wakeQueued = false;
      command
        .multi()
        .xadd(wakeKey, "MAXLEN", "1", "*", "w", "1")
        .pexpire(wakeKey, 60_000)
        .exec()
        .catch(() => undefined); // the XREAD fails too, and that is reported
    });
  }

  function wait(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        interrupt = undefined;
        resolve();
      }
      interrupt = done;
    });
  }

  function deliver(reply: [Buffer, RawStreamEntry[]][] | null): void {
    for (const [key, raws] of reply ?? []) {
      const last = raws.at(-1);
      const name = key.toString("utf8");
      if (name === wakeKey) {
        if (last) wakeCursor = streamEntryId(last);
        continue;
      }
      const state = topics.get(name);
      if (!state || !last) continue;
      deliverEntries(raws, state.listeners);
      // A reply from before the topic was dropped and listened to again may be older than its new start.
      const id = streamEntryId(last);
      if (state.cursor === undefined || compareStreamIds(id, state.cursor) > 0) state.cursor = id;
    }
  }

  async function run(): Promise<void> {
    while (!signal.aborted) {
      const ready = [...topics.values()].filter((state) => state.cursor !== undefined);
      if (ready.length === 0) {
        await wait();
        continue;
      }
      if (blocking.status !== "ready") {
        await wait();
        continue;
      }
      const streams = [...ready.map((state) => state.logKey), wakeKey];
      const ids = [...ready.map((state) => state.cursor ?? "0-0"), wakeCursor];
      let reply: [Buffer, RawStreamEntry[]][] | null;
      blocked = true;
      try {
        reply = (await blocking.xreadBuffer("COUNT", batch, "BLOCK", blockMs, "STREAMS", ...streams, ...ids)) as typeof reply;
      } catch (error) {
        if (signal.aborted) return;
        for (const state of topics.values()) fail(state.listeners, error);
        // Reconnecting: `ready` ends the wait. Connected (a command error): retry after a pause.
        await wait(blocking.status === "ready" ? 1000 : undefined);
        continue;
      } finally {
        blocked = false;
      }
      deliver(reply);
    }
  }
  signal.addEventListener(
    "abort",
    () => {
      clearInterval(touch);
      command.off("ready", restart);
      blocking.off("ready", onBlockingReady);
      interrupt?.();
    },
    { once: true },
  );
  void run();

  return {
    listen(topic, listener) {
      const logKey = keys.log(topic);
      let state = topics.get(logKey);
      if (!state) {
        state = { metaKey: keys.meta(topic), logKey, listeners: new Set(), cursor: undefined, starting: false };
        topics.set(logKey, state);
      }
      // A topic whose start failed (Redis was down) starts again for its new listener.
      if (state.cursor === undefined && !state.starting) start(state);
      state.listeners.add(listener);
      if (blocking.status !== "ready") queueMicrotask(() => fail([listener], new Error("the Redis live reader is disconnected")));
      const active = state;
      return () => {
        active.listeners.delete(listener);
        if (active.listeners.size === 0 && topics.get(logKey) === active) topics.delete(logKey);
      };
    },
  };
}

/** What keepTopicsAlive needs of a topic a live reader listens to. */
interface TouchedTopic {
  readonly metaKey: string;
  readonly logKey: string;
  /** Undefined until the topic started (its first touch fixed where reading starts). */
  readonly cursor: string | undefined;
}

/**
 * Keeps every started topic of a live reader from expiring while it has
 * listeners: touches each every `intervalMs`. A failed touch is left to the
 * feed to report. Returns the timer, for clearInterval.
 */
export function keepTopicsAlive(command: RedisScriptCommands, topics: ReadonlyMap<string, TouchedTopic>, intervalMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const state of topics.values()) {
      if (state.cursor !== undefined) command.rivuletTouch(state.metaKey, state.logKey, String(emptyTopicTtlMs)).catch(() => undefined);
    }
  }, intervalMs);
  timer.unref();
  return timer;
}

/** Hands each entry, decoded once, to every listener; a listener that throws is ended with the error. */
export function deliverEntries(raws: readonly RawStreamEntry[], listeners: Iterable<Listener>): void {
  for (const raw of raws) {
    const entry = parseStreamEntry(raw);
    for (const listener of listeners) {
      try {
        listener.entry(entry);
      } catch (error) {
        listener.error(ConnectError.from(error));
      }
    }
  }
}

/** Ends listeners with `unavailable`: the feed broke, and they resume from their last cursor. */
export function fail(listeners: Iterable<Listener>, error: unknown): void {
  const reason = new ConnectError("broker unavailable: live feed interrupted; resume from the last cursor", Code.Unavailable, undefined, undefined, error);
  for (const listener of [...listeners]) listener.error(reason);
}

/** Orders stream ids `<ms>-<seq>` as Redis does. */
function compareStreamIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split("-").map(Number);
  const [bMs = 0, bSeq = 0] = b.split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}
