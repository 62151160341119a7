import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis, ReplyError, type Cluster, type RedisOptions } from "ioredis";
import type {
  Broker,
  Entry,
  GapReason,
  PageResult,
  Position,
  PresenceListener,
  PublishOptions,
  PublishResult,
  ReadFrom,
  ReadResult,
  Retention,
  SignalListener,
} from "../broker.js";
import { createEpoch } from "../epoch.js";
import { backoffDelay, type BackoffOptions } from "../../wire/backoff.js";
import { parseStreamEntry, type RawStreamEntry } from "./entry.js";
import { createClusterClient, createClusterSubscriber, isClusterUrl, parseClusterUrl } from "./cluster.js";
import { createRedisKeys } from "./keys.js";
import { createRedisLiveReader, type RedisLiveReader } from "./live-reader.js";
import { createRedisNotifiedReader } from "./notified-reader.js";
import { createRedisPresence } from "./presence.js";
import { defineRedisScripts, emptyTopicTtlMs, type RedisScriptCommands } from "./scripts.js";
import { createRedisSignalChannels, type RedisSignalChannels } from "./signal-channels.js";

/** Where the Redis broker connects and how it names and keeps things. */
export interface RedisBrokerOptions {
  /**
   * redis:// or rediss:// URL, with an optional database number (`redis://host:6379/2`),
   * or redis+cluster:// (rediss+cluster://) with one or more seed nodes of a Redis Cluster.
   */
  readonly url: string;
  /** Prefix of every key; instances sharing data use the same one. Default `rivulet:`. */
  readonly prefix?: string;
  /** Names this instance's connections (`CLIENT LIST` shows `rivulet:<id>`). Default random. */
  readonly instanceId?: string;
  /** Retention for topics published without their own. */
  readonly retention?: Retention;
  /** The clock for append times, age retention and dedupe expiry; tests pass their own. */
  readonly now?: () => number;
  /** How long creation waits for Redis before starting anyway (not ready until it answers). */
  readonly connectTimeoutMs?: number;
  /** How often topics with live listeners are kept from expiring. */
  readonly touchIntervalMs?: number;
  /** How soon the users of an instance that died stop being present (see presence.ts). Default 30 s. */
  readonly presenceTtlMs?: number;
  /**
   * Replicas that must have an entry before a publish is acknowledged (Redis WAIT after the
   * publish script, on the topic's node); 0, the default, acknowledges once the master has it.
   */
  readonly waitReplicas?: number;
  /** How long a publish waits for those replicas before answering `unavailable`. Default 1 s. */
  readonly waitTimeoutMs?: number;
  /** Called when Redis becomes reachable (both connections ready) and when it stops being so, once per change. */
  readonly onStatus?: (status: "up" | "down", error?: Error) => void;
}

/** The Redis broker, with what operators and tests need to find its connections. */
export interface RedisBroker extends Broker {
  readonly instanceId: string;
  /** The `CLIENT SETNAME` of every connection of this instance. */
  readonly connectionName: string;
}

const defaultRetention: Retention = { maxCount: 1000, maxAgeMs: 24 * 3600_000 };
/** Longest wait of the live reader's XREAD; its connection must hear back within this plus a margin. */
const liveBlockMs = 10_000;
/**
 * How ioredis spaces its reconnection attempts: the clients' exponential
 * backoff with full jitter (wire/backoff.ts), so instances that lost Redis
 * together do not all come back in step, capped at about a second because
 * the broker is unavailable until it reconnects. The floor keeps a jittered
 * delay of 0 from spinning on a Redis that refuses at once.
 */
const reconnectBackoff: BackoffOptions = { initialMs: 100, maxMs: 1000 };
const minReconnectDelayMs = 50;

/**
 * The Redis Streams broker: any number of instances share one Redis. Each
 * topic is a stream plus a meta hash holding Rivulet's epoch and offset,
 * changed together by Lua scripts (see scripts.ts). Each instance holds
 * exactly two connections whatever its load: one for commands, one blocked
 * in XREAD for every topic it listens to (see live-reader.ts), and a third
 * once it listens to signals or watches presence, subscribed to every such
 * channel it listens to (see signal-channels.ts and presence.ts).
 *
 * Failures: commands fail fast with `unavailable` while Redis is unreachable
 * (no offline queue, nothing replayed behind the caller's back), live
 * listeners are told, and ioredis reconnects by itself.
 */
export async function createRedisBroker(options: RedisBrokerOptions): Promise<RedisBroker> {
  const now = options.now ?? Date.now;
  const fallback = options.retention ?? defaultRetention;
  const keys = createRedisKeys(options.prefix ?? "rivulet:");
  const instanceId = options.instanceId ?? randomBytes(6).toString("base64url");
  const connectionName = `rivulet:${instanceId}`;
  // ioredis counts attempts from 1; backoffDelay from 0.
  const retryDelay = (attempt: number) => Math.max(minReconnectDelayMs, backoffDelay(attempt - 1, reconnectBackoff));
  const seeds = isClusterUrl(options.url) ? parseClusterUrl(options.url) : undefined;
  let command: (Redis | Cluster) & RedisScriptCommands;
  /** The connections whose state is the broker's readiness. */
  let connections: (Redis | Cluster)[];
  let subscriber: Redis;
  let startLive: (signal: AbortSignal, signals: RedisSignalChannels) => RedisLiveReader;
  if (seeds) {
    // Redis Cluster: the cluster client (a connection per master), one subscriber, no blocking connection (see notified-reader.ts).
    const cluster = defineRedisScripts(createClusterClient(seeds, { connectionName, retryDelay }));
    command = cluster;
    connections = [cluster];
    subscriber = createClusterSubscriber(cluster, seeds, { connectionName, retryDelay });
    startLive = (signal, channels) =>
      createRedisNotifiedReader({ command: cluster, channels, subscriber, keys, touchIntervalMs: options.touchIntervalMs, signal });
  } else {
    const connection: RedisOptions = {
      connectionName,
      // RESP2 keeps XREAD's reply an array of [key, entries] pairs.
      protocol: 2,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: retryDelay,
    };
    // A connection that stops answering without closing (a half-open TCP
    // connection, a frozen server) is destroyed and reconnected, so it fails
    // like a closed one: commands answer `unavailable` and live listeners are told.
    const single = defineRedisScripts(new Redis(options.url, { ...connection, commandTimeout: 5000, socketTimeout: 5000 }));
    const blocking = new Redis(options.url, { ...connection, socketTimeout: liveBlockMs + 5000 });
    command = single;
    connections = [single, blocking];
    // Pub/Sub needs a connection of its own. Opened on first use; its queue is on (a SUBSCRIBE waits
    // out an outage instead of failing, and nothing waits on it), and its state is not readiness:
    // signals may be lost, messages may not.
    subscriber = single.duplicate({ lazyConnect: true, enableOfflineQueue: true, maxRetriesPerRequest: null });
    startLive = (signal) =>
      createRedisLiveReader({ command: single, blocking, keys, instanceId, blockMs: liveBlockMs, touchIntervalMs: options.touchIntervalMs, signal });
  }
  // Connection errors surface through ready() and rejected commands, and once
  // per outage through onStatus; without a listener ioredis would print every
  // reconnect attempt.
  let lastError: Error | undefined;
  let up = false;
  let closed = false;
  const allReady = () => connections.every((redis) => redis.status === "ready");
  const report = () => {
    if (closed) return;
    const nowUp = allReady();
    if (nowUp !== up) options.onStatus?.(nowUp ? "up" : "down", nowUp ? undefined : lastError);
    up = nowUp;
  };
  for (const redis of connections) {
    redis.on("error", (error: Error) => {
      lastError = error;
    });
    redis.on("ready", report);
    redis.on("close", report);
  }
  if (seeds) {
    // The cluster client reports a node's failure here, not as "error".
    command.on("node error", (error: Error) => {
      lastError = error;
    });
  }
  subscriber.on("error", (error: Error) => {
    lastError = error;
  });
  const signals = createRedisSignalChannels(subscriber);
  await Promise.all(connections.map((redis) => withTimeout(readyOf(redis), options.connectTimeoutMs ?? 5000)));
  if (seeds && command.status === "ready") {
    // The cluster client opens a master's connection on its first command, and until it is open
    // sends that node's commands elsewhere to be redirected: open them all before serving.
    const masters = Promise.allSettled((command as Cluster).nodes("master").map((node) => node.ping()));
    await withTimeout(
      masters.then(() => undefined),
      options.connectTimeoutMs ?? 5000,
    );
    // Seeds that turn out to be replicas were connected while the client learnt their role; with
    // scaleReads "master" nothing is sent to them: close them (the client keeps them known, unopened).
    for (const replica of (command as Cluster).nodes("slave")) if (replica.status !== "wait") replica.disconnect();
  }

  const stop = new AbortController();
  const live = startLive(stop.signal, signals);
  const presence = createRedisPresence({
    command,
    channels: signals,
    keys,
    instanceId,
    ttlMs: options.presenceTtlMs ?? 30_000,
    now,
    signal: stop.signal,
  });

  const waitReplicas = Math.max(0, Math.floor(options.waitReplicas ?? 0));
  const waitTimeoutMs = Math.max(1, Math.floor(options.waitTimeoutMs ?? 1000));
  /**
   * The publish script and WAIT in one pipeline: a pipeline goes to one node, the one of the
   * script's keys (WAIT has none), so WAIT counts the replicas of the topic's master. Too few
   * in time: `unavailable`, though the master has the entry; the publisher retries with its
   * idempotency key, gets the entry back as a duplicate, and this WAIT runs again for it.
   */
  async function publishAndWait(args: [string, string, string, ...(string | Buffer)[]], redirections = 0): Promise<unknown[]> {
    const pipeline = command.pipeline() as ReturnType<typeof command.pipeline> & {
      rivuletPublishBuffer(...publishArgs: (string | Buffer)[]): ReturnType<typeof command.pipeline>;
    };
    const results =
      (await pipeline
        .rivuletPublishBuffer(...args)
        .wait(waitReplicas, waitTimeoutMs)
        .exec()) ?? [];
    const [published, waited] = results;
    if (!published || !waited) throw new Error("the publish pipeline was discarded");
    // The cluster client follows a redirection of a pipeline only when every command in it was
    // redirected, and WAIT (no key) never is: after a failover or a migration the script alone
    // answers MOVED (it did not run). Refresh the slots and send the pipeline to the new node.
    const failure = published[0];
    if (seeds && failure instanceof ReplyError && /^(MOVED|ASK) /.test((failure as Error).message) && redirections < 3) {
      await new Promise<void>((resolve) => (command as Cluster).refreshSlotsCache(() => resolve()));
      return publishAndWait(args, redirections + 1);
    }
    if (failure) throw failure;
    if (waited[0]) throw waited[0];
    const acknowledged = Number(waited[1]);
    if (acknowledged < waitReplicas) {
      throw new ConnectError(
        `broker unavailable: ${acknowledged} of ${waitReplicas} Redis replicas acknowledged the publish in ${waitTimeoutMs} ms; retry with the same idempotency key`,
        Code.Unavailable,
      );
    }
    return published[1] as unknown[];
  }

  /** The arguments both read scripts end with: the clock, a topic's new epoch and default retention, and the lifetime of a topic a read creates. */
  function readContext(): string[] {
    return [String(now()), createEpoch(), String(fallback.maxCount), String(fallback.maxAgeMs), String(Math.min(fallback.maxAgeMs, emptyTopicTtlMs))];
  }

  return {
    instanceId,
    connectionName,

    async publish(topic: string, data: Uint8Array, publishOptions?: PublishOptions): Promise<PublishResult> {
      const time = now();
      const retention = publishOptions?.retention;
      const dedupe = publishOptions?.dedupe;
      const expected = publishOptions?.expectHead;
      const args: [string, string, string, ...(string | Buffer)[]] = [
        keys.meta(topic),
        keys.log(topic),
        keys.seen(topic, dedupe?.key ?? ""),
        Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        String(time),
        createEpoch(),
        retention ? String(retention.maxCount) : "",
        retention ? String(retention.maxAgeMs) : "",
        String(fallback.maxCount),
        String(fallback.maxAgeMs),
        String(dedupe ? Math.max(0, Math.floor(dedupe.ttlMs)) : 0),
        expected ? expected.epoch : "",
        expected ? String(expected.offset) : "",
        seeds ? keys.live(topic) : "",
      ];
      const reply = await attempt(() => (waitReplicas > 0 ? publishAndWait(args) : command.rivuletPublishBuffer(...args)));
      const [duplicate, epoch, offset, appended, original] = reply as [number, Buffer, number, number, Buffer | undefined];
      if (duplicate === 2) throw new ConnectError("the topic changed since it was read; read again and retry", Code.Aborted);
      const entry: Entry = {
        position: { epoch: epoch.toString("utf8"), offset },
        data: duplicate === 1 && original ? new Uint8Array(original.buffer, original.byteOffset, original.byteLength) : data,
        time: appended,
      };
      return { entry, duplicate: duplicate === 1 };
    },

    async read(topic: string, from: ReadFrom, limit: number): Promise<ReadResult> {
      const [mode, n, epoch] = "last" in from ? ["last", Math.min(from.last, limit), ""] : ["after", from.after.offset, from.after.epoch];
      const stamp = "after" in from ? stampArgument(from.after) : "";
      const reply = await attempt(() =>
        command.rivuletReadBuffer(keys.meta(topic), keys.log(topic), mode, String(Math.max(0, n)), epoch, String(Math.max(0, limit)), ...readContext(), stamp),
      );
      const { head, status, raws } = readReply(reply);
      const entries = raws.map(parseStreamEntry);
      if (status === "last") entries.reverse();
      const gap: GapReason | undefined = status === "trimmed" || status === "epoch_changed" ? status : undefined;
      return gap ? { head, entries, gap } : { head, entries };
    },

    async readBefore(topic: string, before: Position | undefined, limit: number): Promise<PageResult> {
      const count = Math.max(0, limit);
      const reply = await attempt(() =>
        command.rivuletReadBeforeBuffer(
          keys.meta(topic),
          keys.log(topic),
          before ? before.epoch : "",
          String(before ? Math.max(0, before.offset) : 0),
          String(count),
          ...readContext(),
          before ? stampArgument(before) : "",
        ),
      );
      const { head, status, raws } = readReply(reply);
      if (status === "epoch_changed") return { head, entries: [], more: false, gap: "epoch_changed" };
      // The script reads one entry past the limit, newest first: its presence is `more`.
      const entries = raws.slice(0, count).map(parseStreamEntry).reverse();
      return { head, entries, more: raws.length > count };
    },

    async removeHistory(topic: string): Promise<void> {
      // XTRIM keeps the stream's key and its last id, and the meta hash keeps the epoch and offset:
      // later entries get later ids, and the read scripts see a cursor before the head as trimmed.
      await attempt(() => command.xtrim(keys.log(topic), "MAXLEN", 0));
    },

    listen: (topic, listener) => live.listen(topic, listener),

    async signal(topic: string, data: Uint8Array): Promise<void> {
      const channel = keys.signals(topic);
      const message = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      // A cluster client sends a PUBLISH, which names no key, to any node, and two nodes relay over the cluster bus
      // at their own pace: one sender's signals could arrive out of order ("typing" after "stopped"). Naming the
      // channel as the script's key sends every signal of a topic through its slot's master, in order.
      await attempt(() => (seeds ? command.eval(publishOnSlot, 1, channel, message) : command.publish(channel, message)));
    },

    listenSignals: (topic: string, listener: SignalListener) => signals.listen(keys.signals(topic), listener),

    enterPresence: (topic: string, user: string) => presence.enter(topic, user),

    watchPresence: (topic: string, listener: PresenceListener) => presence.watch(topic, listener),

    async ready(): Promise<boolean> {
      if (!allReady()) return false;
      try {
        return (await command.ping()) === "PONG";
      } catch {
        return false;
      }
    },

    close(): Promise<void> {
      closed = true;
      stop.abort();
      for (const redis of connections) redis.disconnect();
      subscriber.disconnect();
      return Promise.resolve();
    },
  };
}

/** PUBLISH on the master of the channel's slot (Redis Cluster): the channel is the script's one key. */
const publishOnSlot = "return redis.call('PUBLISH', KEYS[1], ARGV[1])";

/** Runs a command, turning every failure into a ConnectError. */
async function attempt<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toConnectError(error);
  }
}

/** Replies that mean Redis cannot serve now, though it answered: retrying later may work. */
const transientReplies = /^(LOADING|BUSY|OOM|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS|MISCONF)\b/;

function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof ReplyError && !transientReplies.test(String((error as Error).message))) {
    return new ConnectError("broker error", Code.Internal, undefined, undefined, error);
  }
  // Not connected, connection lost mid-command, timed out, or a transient reply.
  return new ConnectError("broker unavailable: Redis is unreachable", Code.Unavailable, undefined, undefined, error);
}

function readyOf(redis: Redis | Cluster): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve) => redis.once("ready", () => resolve()));
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A position's stamp as the read scripts take it: '' for none (see rewritten.lua). */
function stampArgument(position: Position): string {
  return position.stamp === undefined ? "" : String(position.stamp);
}

/** The reply both read scripts give: {epoch, head offset, status, entries}. An `ahead` status is an unstamped cursor past the log: invalid_argument. */
function readReply(reply: unknown): { head: Position; status: string; raws: RawStreamEntry[] } {
  const [headEpoch, headOffset, statusBuffer, raws] = reply as [Buffer, number, Buffer, RawStreamEntry[]];
  const status = statusBuffer.toString("latin1");
  if (status === "ahead") throw new ConnectError("cursor is ahead of the stream", Code.InvalidArgument);
  return { head: { epoch: headEpoch.toString("utf8"), offset: headOffset }, status, raws };
}
