import type { Cluster, Redis } from "ioredis";
import type { PresenceListener } from "../broker.js";
import type { RedisKeys } from "./keys.js";
import type { RedisSignalChannels } from "./signal-channels.js";

export interface RedisPresenceOptions {
  readonly command: Redis | Cluster;
  /** The instance's Pub/Sub connection (shared with signals). */
  readonly channels: RedisSignalChannels;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  /** How soon a dead instance's users stop being present. */
  readonly ttlMs: number;
  readonly now: () => number;
  /** Stops the heartbeat when aborted (the broker closed). */
  readonly signal: AbortSignal;
}

/** The Redis broker's presence: `Broker.enterPresence` and `Broker.watchPresence`. */
export interface RedisPresence {
  enter(topic: string, user: string): () => void;
  watch(topic: string, listener: PresenceListener): () => void;
}

/** One watched topic on this instance. */
interface Watched {
  readonly listeners: Set<PresenceListener>;
  /** The members last read, once the presence channel's SUBSCRIBE is confirmed and a read answered. */
  members: ReadonlySet<string> | undefined;
  subscribed: boolean;
  reading: boolean;
  /** A change was announced while a read was out: read once more after it. */
  again: boolean;
  readonly stopChannel: () => void;
}

/**
 * Presence over Redis. Each room's presence is one sorted set whose members
 * are `<instance id>\n<user>` (one per user per instance, however many streams
 * the user has open there: those are counted here, in memory) scored by when
 * they expire. An instance refreshes its own members every quarter of the TTL
 * to expire three quarters of it later, so an instance that dies (SIGKILL, a
 * lost host) leaves entries that stop counting within three quarters of the
 * TTL while a live one has half the TTL of margin for a late heartbeat; the
 * set itself expires with its last writer. Scores are the writer's clock:
 * instances' clocks must agree to well within the TTL (NTP does).
 *
 * Watchers read the set (members not yet expired, users deduplicated) when
 * it may have changed: on a message on the room's presence channel, which
 * every instance publishes after a user joins or leaves there, and every
 * quarter of the TTL, which is how a dead instance's users are seen to leave
 * (nobody announces that) — within the TTL in all. The first read waits for
 * the channel's SUBSCRIBE, so no announced change after it is missed. A
 * failed write or read is not reported: the next heartbeat writes again, the
 * next tick reads again.
 */
export function createRedisPresence(options: RedisPresenceOptions): RedisPresence {
  const { command, channels, keys, instanceId, ttlMs, now } = options;
  /** This instance's presences: per topic, how many each user holds. */
  const local = new Map<string, Map<string, number>>();
  const watched = new Map<string, Watched>();
  const memberOf = (user: string) => `${instanceId}\n${user}`;

  function write(topic: string, users: readonly string[]): Promise<unknown> {
    const key = keys.presence(topic);
    const expiresAt = now() + Math.floor((ttlMs * 3) / 4);
    return command
      .multi()
      .zadd(key, ...users.flatMap((user) => [expiresAt, memberOf(user)]))
      .zremrangebyscore(key, "-inf", now())
      .pexpire(key, ttlMs)
      .exec();
  }

  function announce(topic: string, change: Promise<unknown>): void {
    // After the write, on the same connection: a watcher that hears it reads the change.
    change.then(() => command.publish(keys.presenceChanges(topic), "")).catch(() => undefined);
  }

  function refresh(topic: string, state: Watched): void {
    if (!state.subscribed || watched.get(topic) !== state) return;
    if (state.reading) {
      state.again = true;
      return;
    }
    state.reading = true;
    state.again = false;
    command
      .zrangebyscore(keys.presence(topic), `(${now()}`, "+inf")
      .then(
        (members) => {
          const users = new Set(members.map((member) => member.slice(member.indexOf("\n") + 1)));
          if (state.members !== undefined && sameSet(state.members, users)) return;
          state.members = users;
          for (const listener of state.listeners) listener(users);
        },
        () => undefined,
      )
      .finally(() => {
        state.reading = false;
        if (state.again) refresh(topic, state);
      })
      .catch(() => undefined);
  }

  const tick = setInterval(
    () => {
      for (const [topic, users] of local) write(topic, [...users.keys()]).catch(() => undefined);
      for (const [topic, state] of watched) refresh(topic, state);
    },
    Math.max(1, Math.floor(ttlMs / 4)),
  );
  tick.unref();
  options.signal.addEventListener("abort", () => clearInterval(tick), { once: true });

  return {
    enter(topic: string, user: string): () => void {
      let users = local.get(topic);
      if (!users) local.set(topic, (users = new Map()));
      const count = users.get(user) ?? 0;
      users.set(user, count + 1);
      if (count === 0) announce(topic, write(topic, [user]));
      const mine = users;
      let left = false;
      return () => {
        if (left) return;
        left = true;
        const remaining = (mine.get(user) ?? 1) - 1;
        if (remaining > 0) {
          mine.set(user, remaining);
          return;
        }
        mine.delete(user);
        if (mine.size === 0 && local.get(topic) === mine) local.delete(topic);
        announce(topic, command.zrem(keys.presence(topic), memberOf(user)));
      };
    },

    watch(topic: string, listener: PresenceListener): () => void {
      let state = watched.get(topic);
      if (!state) {
        const created: Watched = {
          listeners: new Set(),
          members: undefined,
          subscribed: false,
          reading: false,
          again: false,
          stopChannel: channels.listen(
            keys.presenceChanges(topic),
            () => refresh(topic, created),
            () => {
              created.subscribed = true;
              refresh(topic, created);
            },
          ),
        };
        watched.set(topic, (state = created));
      }
      const own: PresenceListener = (members) => listener(members);
      const mine = state;
      mine.listeners.add(own);
      if (mine.members !== undefined) own(mine.members);
      return () => {
        if (!mine.listeners.delete(own) || mine.listeners.size > 0) return;
        if (watched.get(topic) === mine) watched.delete(topic);
        mine.stopChannel();
      };
    },
  };
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const value of a) if (!b.has(value)) return false;
  return true;
}
