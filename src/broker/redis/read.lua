-- Reads a topic's log (runs after ensure-meta.lua and trim-age.lua).
-- KEYS: meta, log. ARGV: mode ('last' | 'after'), n (count or offset), after
-- epoch, limit, now, candidate epoch, default count, default age, ttl of a
-- topic the read creates (short: reading a topic must not keep it for a day),
-- the after position's stamp ('' = none, see rewritten.lua).
-- Returns {epoch, head offset, status ('' | 'last' | 'trimmed' |
-- 'epoch_changed' | 'ahead'), entries}; 'last' entries come newest first.
-- A stamped position past the head or at a rewritten entry is 'epoch_changed':
-- the log it pointed into was rewritten (a failover lost its last entries).
local meta, log = KEYS[1], KEYS[2]
local n, limit, now, stamp = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[10])
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
if rewritten(log, base, n, stamp, offset) then return {epoch, offset, 'epoch_changed', oldest()} end
if n > offset then return {epoch, offset, 'ahead', {}} end
local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
local first = offset + 1
if head then first = tonumber(string.match(head[1], '-(%d+)$')) end
if n < first - 1 then return {epoch, offset, 'trimmed', oldest()} end
if limit <= 0 then return {epoch, offset, '', {}} end
return {epoch, offset, '', redis.call('XRANGE', log, base .. '-' .. string.format('%d', n + 1), '+', 'COUNT', limit)}
