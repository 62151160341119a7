-- Creates the topic's epoch if its meta is gone (a new incarnation: the old log goes too).
-- Returns the epoch, the last offset handed out, the base, and the retention (count, age).
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
