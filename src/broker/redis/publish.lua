-- Appends one entry (runs after ensure-meta.lua and trim-age.lua).
-- KEYS: meta, log, seen. ARGV: data, now, candidate epoch, count, age ('' =
-- keep the topic's), default count, default age, dedupe ttl (0 = none),
-- expected head epoch and offset ('' = append unconditionally), the channel
-- to announce the append on ('' = none; Redis Cluster, see notified-reader.ts).
-- Returns {duplicate (0|1), epoch, offset, time, data (duplicates only)},
-- or {2, epoch, offset} when the head is not the expected one.
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
if ARGV[11] ~= '' then redis.call('PUBLISH', ARGV[11], '') end
return {0, epoch, offset, now}
