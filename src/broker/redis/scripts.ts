import type { Redis } from "ioredis";

/**
 * The Lua scripts of the Redis broker. Each runs atomically in Redis, so the
 * epoch, the offset counter, the log and the dedupe record of a topic can
 * never disagree, whichever instance publishes.
 *
 * Storage of one topic (all keys share the `{topic}` hash tag, so one slot):
 * - `meta` hash: `epoch`, `offset` (the last offset handed out), `base` (the
 *   Redis time in ms when this epoch began), `count` and `age` (retention).
 * - `log` stream: one entry per message, id `<base>-<offset>`, fields in this
 *   order: `t` (append time, ms), `e` (epoch), `d` (data).
 * - `seen:<key>` hash per dedupe key: `e`, `o`, `t`, `x` (expires at), `d`.
 *
 * Why ids `<base>-<offset>`: reads address an offset directly (`XRANGE` from
 * `<base>-<after + 1>`), and a new epoch starts at a later `base`, so its ids
 * sort after every id of the lost epoch and the live reader (which remembers
 * the last id it saw) picks them up. Stream ids alone could not reveal a gap:
 * after a trim or a wipe, reading from an old id silently skips what is gone.
 * That is what `meta.epoch` and the offsets are for.
 */

/** Creates the topic's epoch if its meta is gone (a new incarnation: the old log goes too). */
const ensureMeta = `
local function ensureMeta(meta, log, candidate, defaultCount, defaultAge, createdTtl)
  local m = redis.call('HMGET', meta, 'epoch', 'offset', 'base', 'count', 'age')
  if m[1] then
    return m[1], tonumber(m[2]), m[3], tonumber(m[4]), tonumber(m[5])
  end
  local t = redis.call('TIME')
  local base = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', candidate, 'offset', 0, 'base', base, 'count', defaultCount, 'age', defaultAge)
  redis.call('PEXPIRE', meta, createdTtl)
  return candidate, 0, base, tonumber(defaultCount), tonumber(defaultAge)
end
`;

/** Drops entries appended at or before \`cutoff\` (the memory broker's rule: age >= maxAge). */
const trimAge = `
local function trimAge(log, cutoff)
  local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if not head or tonumber(head[2][2]) > cutoff then return end
  while true do
    local batch = redis.call('XRANGE', log, '-', '+', 'COUNT', 128)
    local stale = {}
    for _, entry in ipairs(batch) do
      if tonumber(entry[2][2]) > cutoff then
        redis.call('XTRIM', log, 'MINID', entry[1])
        return
      end
      stale[#stale + 1] = entry[1]
    end
    if #stale == 0 then return end
    redis.call('XDEL', log, unpack(stale))
    if #batch < 128 then return end
  end
end
`;

/**
 * KEYS: meta, log, seen. ARGV: data, now, candidate epoch, count, age ('' =
 * keep the topic's), default count, default age, dedupe ttl (0 = none),
 * expected head epoch and offset ('' = append unconditionally).
 * Returns {duplicate (0|1), epoch, offset, time, data (duplicates only)},
 * or {2, epoch, offset} when the head is not the expected one.
 */
const publish = `${ensureMeta}${trimAge}
local meta, log, seenKey = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[2])
local seenTtl = tonumber(ARGV[8])
if seenTtl > 0 then
  local seen = redis.call('HMGET', seenKey, 'e', 'o', 't', 'x', 'd')
  if seen[1] and tonumber(seen[4]) > now then
    return {1, seen[1], tonumber(seen[2]), tonumber(seen[3]), seen[5]}
  end
end
local epoch, last, base, keptCount, keptAge = ensureMeta(meta, log, ARGV[3], ARGV[6], ARGV[7], ARGV[7])
if ARGV[9] ~= '' and (ARGV[9] ~= epoch or tonumber(ARGV[10]) ~= last) then
  return {2, epoch, last}
end
local count, age = tonumber(ARGV[4]), tonumber(ARGV[5])
if not count then count, age = keptCount, keptAge end
local offset = redis.call('HINCRBY', meta, 'offset', 1)
redis.call('HSET', meta, 'count', count, 'age', age)
redis.call('XADD', log, 'MAXLEN', count, base .. '-' .. string.format('%d', offset), 't', ARGV[2], 'e', epoch, 'd', ARGV[1])
trimAge(log, now - age)
redis.call('PEXPIRE', meta, age)
redis.call('PEXPIRE', log, age)
if seenTtl > 0 then
  redis.call('HSET', seenKey, 'e', epoch, 'o', offset, 't', ARGV[2], 'x', string.format('%d', now + seenTtl), 'd', ARGV[1])
  redis.call('PEXPIRE', seenKey, seenTtl)
end
return {0, epoch, offset, now}
`;

/**
 * KEYS: meta, log. ARGV: mode ('last' | 'after'), n (count or offset), after
 * epoch, limit, now, candidate epoch, default count, default age, ttl of a
 * topic the read creates (short: reading a topic must not keep it for a day).
 * Returns {epoch, head offset, status ('' | 'last' | 'trimmed' |
 * 'epoch_changed' | 'ahead'), entries}; 'last' entries come newest first.
 */
const read = `${ensureMeta}${trimAge}
local meta, log = KEYS[1], KEYS[2]
local n, limit, now = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch, offset, base, _, age = ensureMeta(meta, log, ARGV[6], ARGV[7], ARGV[8], ARGV[9])
trimAge(log, now - age)
if ARGV[1] == 'last' then
  local count = math.min(n, limit)
  if count <= 0 then return {epoch, offset, '', {}} end
  return {epoch, offset, 'last', redis.call('XREVRANGE', log, '+', '-', 'COUNT', count)}
end
local function oldest()
  if limit <= 0 then return {} end
  return redis.call('XRANGE', log, '-', '+', 'COUNT', limit)
end
if ARGV[3] ~= epoch then return {epoch, offset, 'epoch_changed', oldest()} end
if n > offset then return {epoch, offset, 'ahead', {}} end
local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
local first = offset + 1
if head then first = tonumber(string.match(head[1], '-(%d+)$')) end
if n < first - 1 then return {epoch, offset, 'trimmed', oldest()} end
if limit <= 0 then return {epoch, offset, '', {}} end
return {epoch, offset, '', redis.call('XRANGE', log, base .. '-' .. string.format('%d', n + 1), '+', 'COUNT', limit)}
`;

/**
 * KEYS: meta, log. ARGV: ttl of an empty topic. Keeps a topic with live
 * listeners from expiring (the memory broker never forgets a topic someone
 * listens to) and returns the id of its newest entry, where the live reader
 * starts ('0-0' for none). An empty topic is kept only for the short ttl, so
 * that listening to random names leaves nothing behind for long.
 */
const touch = `
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
local age = redis.call('HGET', KEYS[1], 'age')
if newest and age then redis.call('PEXPIRE', KEYS[1], age)
elseif age then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if newest then return newest[1] end
return '0-0'
`;

/** How long a topic with no message stays known after it was last read or listened to (the memory broker sweeps such topics too). */
export const emptyTopicTtlMs = 60_000;

type Reply<T> = Promise<T>;
type Arg = string | number | Buffer | Uint8Array;

/** The scripts as ioredis commands (`defineCommand` adds them at run time, so they are typed here). */
export interface RedisScriptCommands {
  rivuletPublishBuffer(meta: string, log: string, seen: string, ...args: Arg[]): Reply<unknown[]>;
  rivuletReadBuffer(meta: string, log: string, ...args: Arg[]): Reply<unknown[]>;
  rivuletTouch(meta: string, log: string, emptyTtl: string): Reply<string>;
}

/** Registers the broker's scripts on a connection (EVALSHA, falling back to EVAL once per script). */
export function defineRedisScripts(redis: Redis): Redis & RedisScriptCommands {
  redis.defineCommand("rivuletPublish", { numberOfKeys: 3, lua: publish });
  redis.defineCommand("rivuletRead", { numberOfKeys: 2, lua: read });
  redis.defineCommand("rivuletTouch", { numberOfKeys: 2, lua: touch });
  return redis as Redis & RedisScriptCommands;
}
