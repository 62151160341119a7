import { Code, ConnectError } from "@connectrpc/connect";
import { entryStamp } from "./cursor.js";
import { createEpoch } from "./epoch.js";
import type {
  Broker,
  Entry,
  Listener,
  PageResult,
  Position,
  PublishOptions,
  PublishResult,
  ReadFrom,
  PresenceListener,
  ReadResult,
  Retention,
  SignalListener,
} from "./broker.js";

export interface MemoryBrokerOptions {
  /** Retention for topics published without their own. */
  readonly retention?: Retention;
  /** Most dedupe keys remembered at once; the oldest are forgotten first. */
  readonly maxDedupeKeys?: number;
  /** How often expired messages, keys and idle topics are swept. */
  readonly sweepIntervalMs?: number;
  /** The clock, in milliseconds; tests pass their own to age messages. */
  readonly now?: () => number;
}

interface Topic {
  /** Random per incarnation: a topic forgotten and created again gets a new one. */
  readonly epoch: string;
  readonly entries: Entry[];
  lastOffset: number;
  retention: Retention;
  readonly listeners: Set<Listener>;
}

const defaultRetention: Retention = { maxCount: 1000, maxAgeMs: 24 * 3600_000 };

/**
 * The in-memory broker: one process, nothing to install. Every topic's log
 * lives in an array trimmed by count and age; live listeners are called
 * synchronously, in order, as entries are appended, and signal listeners
 * as signals are sent.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): Broker {
  const now = options.now ?? Date.now;
  const fallbackRetention = options.retention ?? defaultRetention;
  const maxDedupeKeys = options.maxDedupeKeys ?? 100_000;
  const topics = new Map<string, Topic>();
  // Insertion order is expiry order for equal TTLs; good enough for a bound.
  const dedupe = new Map<string, { entry: Entry; expiresAt: number }>();
  /** Signal listeners by topic, apart from the logs: a signal creates no topic, and no topic outlives its last listener here. */
  const signalListeners = new Map<string, Set<SignalListener>>();
  /** Per topic: how many presences each user holds, and who watches; dropped when both are empty. */
  const presence = new Map<string, { readonly counts: Map<string, number>; readonly watchers: Set<PresenceListener> }>();

  function presenceOf(name: string) {
    let room = presence.get(name);
    if (!room) presence.set(name, (room = { counts: new Map(), watchers: new Set() }));
    return room;
  }

  function presenceChanged(name: string, room: NonNullable<ReturnType<typeof presence.get>>): void {
    if (room.counts.size === 0 && room.watchers.size === 0) presence.delete(name);
    if (room.watchers.size === 0) return;
    const members: ReadonlySet<string> = new Set(room.counts.keys());
    for (const watcher of room.watchers) watcher(members);
  }

  const sweep = setInterval(() => {
    const time = now();
    for (const [name, topic] of topics) {
      trim(topic, time);
      if (topic.entries.length === 0 && topic.listeners.size === 0) topics.delete(name);
    }
    for (const [key, value] of dedupe) {
      if (value.expiresAt <= time) dedupe.delete(key);
    }
  }, options.sweepIntervalMs ?? 30_000);
  sweep.unref();

  function topicFor(name: string, retention?: Retention): Topic {
    let topic = topics.get(name);
    if (!topic) {
      topic = {
        epoch: createEpoch(),
        entries: [],
        lastOffset: 0,
        retention: retention ?? fallbackRetention,
        listeners: new Set(),
      };
      topics.set(name, topic);
    } else if (retention) {
      topic.retention = retention;
    }
    return topic;
  }

  function trim(topic: Topic, time: number): void {
    const { maxCount, maxAgeMs } = topic.retention;
    let drop = Math.max(0, topic.entries.length - maxCount);
    while (drop < topic.entries.length && time - (topic.entries[drop]?.time ?? time) >= maxAgeMs) drop++;
    if (drop > 0) topic.entries.splice(0, drop);
  }

  return {
    publish(name: string, data: Uint8Array, publishOptions?: PublishOptions): Promise<PublishResult> {
      const time = now();
      // Keys are scoped to their topic, as in Redis (one hash slot per topic): a key
      // reused on another topic must not answer with an entry of this one.
      const key = publishOptions?.dedupe ? `${name}\n${publishOptions.dedupe.key}` : undefined;
      if (key !== undefined) {
        const seen = dedupe.get(key);
        if (seen && seen.expiresAt > time) return Promise.resolve({ entry: seen.entry, duplicate: true });
      }
      const topic = topicFor(name, publishOptions?.retention);
      const expected = publishOptions?.expectHead;
      if (expected && (expected.epoch !== topic.epoch || expected.offset !== topic.lastOffset)) {
        return Promise.reject(new ConnectError("the topic changed since it was read; read again and retry", Code.Aborted));
      }
      const entry: Entry = { position: { epoch: topic.epoch, offset: ++topic.lastOffset }, data, time };
      topic.entries.push(entry);
      trim(topic, time);
      if (key !== undefined && publishOptions?.dedupe) {
        dedupe.delete(key);
        dedupe.set(key, { entry, expiresAt: time + publishOptions.dedupe.ttlMs });
        if (dedupe.size > maxDedupeKeys) {
          const oldest = dedupe.keys().next();
          if (!oldest.done) dedupe.delete(oldest.value);
        }
      }
      for (const listener of topic.listeners) listener.entry(entry);
      return Promise.resolve({ entry, duplicate: false });
    },

    read(name: string, from: ReadFrom, limit: number): Promise<ReadResult> {
      const topic = topicFor(name);
      trim(topic, now());
      const head: Position = { epoch: topic.epoch, offset: topic.lastOffset };
      const entries = topic.entries;
      if ("last" in from) {
        const count = Math.min(from.last, limit);
        return Promise.resolve({ head, entries: count > 0 ? entries.slice(-count) : [] });
      }
      const { after } = from;
      if (after.epoch !== topic.epoch || rewritten(topic, after)) {
        return Promise.resolve({ head, entries: entries.slice(0, limit), gap: "epoch_changed" });
      }
      if (after.offset > topic.lastOffset) {
        return Promise.reject(new ConnectError("cursor is ahead of the stream", Code.InvalidArgument));
      }
      const first = entries[0]?.position.offset ?? topic.lastOffset + 1;
      if (after.offset < first - 1) {
        return Promise.resolve({ head, entries: entries.slice(0, limit), gap: "trimmed" });
      }
      const start = after.offset - first + 1;
      return Promise.resolve({ head, entries: entries.slice(start, start + limit) });
    },

    readBefore(name: string, before: Position | undefined, limit: number): Promise<PageResult> {
      const topic = topicFor(name);
      trim(topic, now());
      const head: Position = { epoch: topic.epoch, offset: topic.lastOffset };
      const entries = topic.entries;
      if (before && (before.epoch !== topic.epoch || rewritten(topic, before)))
        return Promise.resolve({ head, entries: [], more: false, gap: "epoch_changed" });
      if (before && before.offset > topic.lastOffset) {
        return Promise.reject(new ConnectError("cursor is ahead of the stream", Code.InvalidArgument));
      }
      // Offsets are consecutive from the oldest retained entry: the page ends right before `before`'s index.
      const first = entries[0]?.position.offset ?? topic.lastOffset + 1;
      const end = before ? Math.min(entries.length, Math.max(0, before.offset - first)) : entries.length;
      const start = Math.max(0, end - Math.max(0, limit));
      return Promise.resolve({ head, entries: entries.slice(start, end), more: start > 0 });
    },

    removeHistory(name: string): Promise<void> {
      // The epoch and lastOffset stay: `read` then finds the oldest retained offset past the head, a trimmed gap.
      topics.get(name)?.entries.splice(0);
      return Promise.resolve();
    },

    listen(name: string, listener: Listener): () => void {
      const topic = topicFor(name);
      topic.listeners.add(listener);
      return () => {
        topic.listeners.delete(listener);
      };
    },

    signal(name: string, data: Uint8Array): Promise<void> {
      for (const listener of signalListeners.get(name) ?? []) listener(data);
      return Promise.resolve();
    },

    listenSignals(name: string, listener: SignalListener): () => void {
      let listeners = signalListeners.get(name);
      if (!listeners) signalListeners.set(name, (listeners = new Set()));
      // Each call adds one listening, even for a function already listening: the returned function removes it.
      const own: SignalListener = (data) => listener(data);
      listeners.add(own);
      return () => {
        listeners.delete(own);
        if (listeners.size === 0 && signalListeners.get(name) === listeners) signalListeners.delete(name);
      };
    },

    enterPresence(name: string, user: string): () => void {
      const room = presenceOf(name);
      const count = room.counts.get(user) ?? 0;
      room.counts.set(user, count + 1);
      if (count === 0) presenceChanged(name, room);
      let left = false;
      return () => {
        if (left) return;
        left = true;
        const remaining = (room.counts.get(user) ?? 1) - 1;
        if (remaining > 0) {
          room.counts.set(user, remaining);
          return;
        }
        room.counts.delete(user);
        presenceChanged(name, room);
      };
    },

    watchPresence(name: string, listener: PresenceListener): () => void {
      const room = presenceOf(name);
      const own: PresenceListener = (members) => listener(members);
      room.watchers.add(own);
      own(new Set(room.counts.keys()));
      return () => {
        if (!room.watchers.delete(own)) return;
        if (room.counts.size === 0 && room.watchers.size === 0 && presence.get(name) === room) presence.delete(name);
      };
    },

    ready: () => Promise.resolve(true),

    close(): Promise<void> {
      clearInterval(sweep);
      return Promise.resolve();
    },
  };
}

/**
 * Whether a stamped position (an entry's cursor, see cursor.ts) no longer
 * names an entry of this log: past the head, or the entry at its offset is
 * another one. This broker never hands an offset out twice within an epoch,
 * so only a forged cursor gets here; checked anyway so every broker answers
 * such a position alike (the Redis broker's logs can be rewritten by a failover).
 */
function rewritten(topic: Topic, position: Position): boolean {
  if (position.stamp === undefined || position.offset <= 0) return false;
  if (position.offset > topic.lastOffset) return true;
  const first = topic.entries[0]?.position.offset;
  const entry = first === undefined ? undefined : topic.entries[position.offset - first];
  return entry !== undefined && entryStamp(entry.time) !== position.stamp;
}
