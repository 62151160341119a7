-- Reads a topic's log backwards (runs after ensure-meta.lua and trim-age.lua):
-- the newest entries before a position, one more than the limit, so the
-- caller knows whether older ones remain without a second round trip.
-- KEYS: meta, log. ARGV: before epoch ('' = from the newest), before offset,
-- limit, now, candidate epoch, default count, default age, ttl of a topic
-- the read creates (as in read.lua), the before position's stamp ('' = none).
-- Returns {epoch, head offset, status ('' | 'epoch_changed' | 'ahead'),
-- entries newest first, at most limit + 1}. A stamped position past the head
-- or at a rewritten entry is 'epoch_changed', as in read.lua.
local meta, log = KEYS[1], KEYS[2]
local n, limit, now, stamp = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[9])
local epoch, offset, base, _, age = ensureMeta(meta, log, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
trimAge(log, now - age)
local last = '+'
if ARGV[1] ~= '' then
  if ARGV[1] ~= epoch then return {epoch, offset, 'epoch_changed', {}} end
  if rewritten(log, base, n, stamp, offset) then return {epoch, offset, 'epoch_changed', {}} end
  if n > offset then return {epoch, offset, 'ahead', {}} end
  if n <= 1 then return {epoch, offset, '', {}} end
  -- Every id of this epoch's log is `<base>-<offset>`: the newest entry before
  -- offset n is at most `<base>-<n - 1>` (an inclusive end, which every Redis
  -- with streams understands, unlike the exclusive `(` of Redis 6.2).
  last = base .. '-' .. string.format('%d', n - 1)
end
return {epoch, offset, '', redis.call('XREVRANGE', log, last, '-', 'COUNT', limit + 1)}
