import { readFileSync } from "node:fs";
import type { Cluster, Redis } from "ioredis";

/**
 * The Lua scripts of the Redis broker. Each runs atomically in Redis, so the
 * epoch, the offset counter, the log and the dedupe record of a topic can
 * never disagree, whichever instance publishes.
 *
 * Storage of one topic (all keys share the `{topic}` hash tag, so one slot):
 * - `meta` hash: `epoch`, `offset` (the last offset handed out), `base` (the
 *   Redis time in ms when this epoch began), `count` and `age` (retention).
 * - `log` stream: one entry per message, id `<base>-<offset>`, fields in this
 *   order: `t` (append time, ms; modulo 2^32 it is the stamp of the entry's
 *   cursors, which rewritten.lua checks), `e` (epoch), `d` (data).
 * - `seen:<key>` hash per dedupe key: `e`, `o`, `t`, `x` (expires at), `d`.
 *
 * Why ids `<base>-<offset>`: reads address an offset directly (`XRANGE` from
 * `<base>-<after + 1>`), and a new epoch starts at a later `base`, so its ids
 * sort after every id of the lost epoch and the live reader (which remembers
 * the last id it saw) picks them up. Stream ids alone could not reveal a gap:
 * after a trim or a wipe, reading from an old id silently skips what is gone.
 * That is what `meta.epoch` and the offsets are for.
 *
 * Each script is a .lua file beside this one, with its KEYS, ARGV and reply
 * written at its top; they are read once, when this module loads.
 */

/** A script's source, next to this module (`npm run build` copies the .lua files into dist/). */
const lua = (name: string) => readFileSync(new URL(`./${name}.lua`, import.meta.url), "utf8");

/** The helpers `publish` and the reads share: Lua functions prepended to each. */
const helpers = lua("ensure-meta") + lua("trim-age");
/** Appends one entry: dedupe, epoch, offset, the log, retention and expiry in one atomic step. */
const publish = helpers + lua("publish");
/** The reads' check of a stamped position: is the entry at its offset still the one it named? */
const readHelpers = helpers + lua("rewritten");
/** Reads the log after a position or its newest entries, with the epoch and head of the same instant. */
const read = readHelpers + lua("read");
/** Reads the newest entries before a position (a history page), with the epoch and head of the same instant. */
const readBefore = readHelpers + lua("read-before");
/** Keeps a listened-to topic from expiring, and says where its live reader starts. */
const touch = lua("touch");

/** How long a topic with no message stays known after it was last read or listened to (the memory broker sweeps such topics too). */
export const emptyTopicTtlMs = 60_000;

type Reply<T> = Promise<T>;
type Arg = string | number | Buffer | Uint8Array;

/** The scripts as ioredis commands (`defineCommand` adds them at run time, so they are typed here). */
export interface RedisScriptCommands {
  rivuletPublishBuffer(meta: string, log: string, seen: string, ...args: Arg[]): Reply<unknown[]>;
  rivuletReadBuffer(meta: string, log: string, ...args: Arg[]): Reply<unknown[]>;
  rivuletReadBeforeBuffer(meta: string, log: string, ...args: Arg[]): Reply<unknown[]>;
  rivuletTouch(meta: string, log: string, emptyTtl: string): Reply<string>;
}

/** Registers the broker's scripts on a connection (EVALSHA, falling back to EVAL once per script). */
export function defineRedisScripts<T extends Redis | Cluster>(redis: T): T & RedisScriptCommands {
  redis.defineCommand("rivuletPublish", { numberOfKeys: 3, lua: publish });
  redis.defineCommand("rivuletRead", { numberOfKeys: 2, lua: read });
  redis.defineCommand("rivuletReadBefore", { numberOfKeys: 2, lua: readBefore });
  // EVAL, not EVALSHA: where the script is not cached yet (a fresh node, a promoted replica),
  // ioredis answers NOSCRIPT by sending EVAL later, behind commands sent after it. The live
  // readers rely on the touch running before the subscriber's read sent after it, and before
  // publishes sent after it, so it always carries its (short) source.
  const scripted = redis as T & RedisScriptCommands;
  scripted.rivuletTouch = (meta, log, emptyTtl) => touchTopic(redis, meta, log, emptyTtl);
  return scripted;
}

/** Runs the touch script (EVAL, see defineRedisScripts) on a connection, or on a cluster node's own connection. */
export function touchTopic(redis: Redis | Cluster, meta: string, log: string, emptyTtl: string): Promise<string> {
  return redis.eval(touch, 2, meta, log, emptyTtl) as Promise<string>;
}
