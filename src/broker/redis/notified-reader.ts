import calculateSlot from "cluster-key-slot";
import type { Cluster, Redis } from "ioredis";
import type { Listener } from "../broker.js";
import { streamEntryId, type RawStreamEntry } from "./entry.js";
import type { RedisKeys } from "./keys.js";
import { deliverEntries, fail, keepTopicsAlive, type RedisLiveReader } from "./live-reader.js";
import { emptyTopicTtlMs, touchTopic, type RedisScriptCommands } from "./scripts.js";
import type { RedisSignalChannels } from "./signal-channels.js";

/** What the notified reader needs: the cluster, the instance's Pub/Sub channels and its connection, the key layout. */
export interface RedisNotifiedReaderOptions {
  readonly command: Cluster & RedisScriptCommands;
  readonly channels: RedisSignalChannels;
  /** The connection under `channels`: when it drops, announcements are lost, so listeners are told. */
  readonly subscriber: Redis;
  readonly keys: RedisKeys;
  /** Most entries read per topic per XREAD. */
  readonly batch?: number;
  /** How often topics with listeners are kept from expiring. */
  readonly touchIntervalMs?: number;
  readonly signal: AbortSignal;
}

/** One topic this instance listens to. */
interface ActiveTopic {
  readonly metaKey: string;
  readonly logKey: string;
  readonly slot: number;
  readonly listeners: Set<Listener>;
  /** The id of the last entry delivered, or where reading starts; undefined until started. */
  cursor: string | undefined;
  starting: boolean;
  /** The announcement channel's SUBSCRIBE is confirmed: from then on no append goes unannounced. */
  subscribed: boolean;
  reading: boolean;
  /** An announcement came while a read was out: read once more after it. */
  again: boolean;
  /** The master that served the topic's slot when it was last read ("host:port"). */
  node: string | undefined;
  readonly stopChannel: () => void;
}

/**
 * The live side of the Redis broker on Redis Cluster. The single-node reader
 * blocks in one XREAD over every topic; a cluster refuses a command whose
 * keys lie in different slots (CROSSSLOT), even slots of the same node, so
 * one blocking XREAD could only cover one topic, and a connection per topic
 * is what Rivulet avoids. Here instead the publish script announces each
 * append on the topic's channel (PUBLISH inside the script, so an entry is
 * never appended unannounced), every instance listening to the topic hears
 * it on its one subscriber connection, and reads from its cursor with a
 * non-blocking XREAD on the cluster's connection to the topic's node. An
 * announcement says only "something was appended": reads go by cursor, so
 * announcements lost or repeated lose or repeat nothing.
 *
 * A topic starts (its cursor fetched, as on one node, before the subscriber
 * reads the log on the same connection) and is read once its channel's
 * SUBSCRIBE is confirmed, so every entry after the subscriber's read is
 * delivered. Connections stay constant: the cluster's one per master and
 * one subscriber, whatever the topics and listeners.
 *
 * Failures, told to the listeners as `unavailable` (they resume by cursor):
 * a failed read; the node of a topic's slot dropping out (its replica may be
 * promoted without the last acknowledged entries, and offsets then repeat:
 * reading on from an old cursor could skip them); the subscriber connection
 * dropping (announcements sent meanwhile are lost). Slot migrations need
 * nothing: the cluster client follows MOVED and ASK, the cursor stays.
 */
export function createRedisNotifiedReader(options: RedisNotifiedReaderOptions): RedisLiveReader {
  const { command, channels, subscriber, keys, signal } = options;
  const batch = options.batch ?? 512;
  const topics = new Map<string, ActiveTopic>(); // by log key

  const touch = keepTopicsAlive(command, topics, options.touchIntervalMs ?? 10_000);

  /** The master serving a slot now, as the cluster client knows it. */
  const nodeOf = (slot: number): string | undefined => command.slots[slot]?.[0];

  const onNodeGone = (redis: Redis) => {
    const key = nodeKey(redis);
    for (const state of topics.values()) {
      if (state.node === key) dropTopic(state, new Error(`Redis node ${key} is gone`));
    }
  };
  command.on("-node", onNodeGone);
  const onSubscriberClose = () => {
    for (const state of topics.values()) dropTopic(state, new Error("the Redis subscriber connection is closed"));
  };
  subscriber.on("close", onSubscriberClose);
  signal.addEventListener(
    "abort",
    () => {
      clearInterval(touch);
      command.off("-node", onNodeGone);
      subscriber.off("close", onSubscriberClose);
    },
    { once: true },
  );

  /** Tells a topic's listeners the feed broke; the topic starts afresh for whoever listens next. */
  function dropTopic(state: ActiveTopic, error: unknown): void {
    state.cursor = undefined;
    state.node = undefined;
    fail(state.listeners, error);
  }

  /**
   * The touch that fixes a topic's start must run on its node before any
   * command sent after it. Through the cluster client it may not: a command
   * for a node whose connection is still opening, or one redirected (MOVED,
   * ASK), is sent again later, behind commands sent after it, and a cursor
   * taken after the subscriber's read or a publish would skip entries. So it
   * goes on the node's own connection, which queues in order while it
   * connects; only if the slot moved meanwhile does it go through the cluster.
   */
  function touchStart(state: ActiveTopic): Promise<string> {
    const ttl = String(emptyTopicTtlMs);
    const node = command.nodes("master").find((redis) => nodeKey(redis) === state.node);
    if (!node) return command.rivuletTouch(state.metaKey, state.logKey, ttl);
    return touchTopic(node, state.metaKey, state.logKey, ttl).catch((error: unknown) => {
      if (!(error instanceof Error) || !/^(MOVED|ASK|TRYAGAIN) /.test(error.message)) throw error;
      state.node = nodeOf(state.slot);
      return command.rivuletTouch(state.metaKey, state.logKey, ttl);
    });
  }

  function start(state: ActiveTopic): void {
    state.starting = true;
    state.node = nodeOf(state.slot);
    touchStart(state).then(
      (id) => {
        state.starting = false;
        if (topics.get(state.logKey) !== state) return;
        state.cursor ??= id;
        read(state);
      },
      (error: unknown) => {
        state.starting = false;
        if (topics.get(state.logKey) === state) fail(state.listeners, error);
      },
    );
  }

  /** Reads the topic from its cursor to its end, then once more if an announcement came meanwhile. */
  function read(state: ActiveTopic): void {
    if (state.cursor === undefined || !state.subscribed || signal.aborted || topics.get(state.logKey) !== state) return;
    if (state.reading) {
      state.again = true;
      return;
    }
    state.reading = true;
    state.again = false;
    const from = state.cursor;
    command.xreadBuffer("COUNT", batch, "STREAMS", state.logKey, from).then(
      (reply) => {
        state.reading = false;
        // Dropped (a node or the subscriber failed) or stopped while reading: this reply may be past a lost entry.
        if (state.cursor !== from || topics.get(state.logKey) !== state) return;
        const raws = ((reply as [Buffer, RawStreamEntry[]][] | null)?.[0]?.[1] ?? []) as RawStreamEntry[];
        deliver(state, raws);
        if (raws.length >= batch || state.again) read(state);
      },
      (error: unknown) => {
        state.reading = false;
        if (topics.get(state.logKey) === state) dropTopic(state, error);
      },
    );
  }

  function deliver(state: ActiveTopic, raws: RawStreamEntry[]): void {
    const last = raws.at(-1);
    if (!last) return;
    deliverEntries(raws, state.listeners);
    state.cursor = streamEntryId(last);
  }

  return {
    listen(topic, listener) {
      const logKey = keys.log(topic);
      let state = topics.get(logKey);
      if (!state) {
        const created: ActiveTopic = {
          metaKey: keys.meta(topic),
          logKey,
          slot: calculateSlot(logKey),
          listeners: new Set(),
          cursor: undefined,
          starting: false,
          subscribed: false,
          reading: false,
          again: false,
          node: undefined,
          stopChannel: channels.listen(
            keys.live(topic),
            () => read(created),
            () => {
              created.subscribed = true;
              read(created);
            },
          ),
        };
        topics.set(logKey, (state = created));
      }
      // A topic that failed (Redis was down, a node failed) starts again for its new listener.
      if (state.cursor === undefined && !state.starting) start(state);
      state.listeners.add(listener);
      if (command.status !== "ready" || subscriber.status === "reconnecting") {
        queueMicrotask(() => fail([listener], new Error("the Redis cluster is unreachable")));
      }
      const active = state;
      return () => {
        active.listeners.delete(listener);
        if (active.listeners.size === 0 && topics.get(logKey) === active) {
          topics.delete(logKey);
          active.stopChannel();
        }
      };
    },
  };
}

/** How the cluster client names a node in its slots table: "host:port". */
function nodeKey(redis: Redis): string {
  return `${redis.options.host ?? "127.0.0.1"}:${redis.options.port ?? 6379}`;
}
