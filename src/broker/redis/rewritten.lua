-- Whether the log was rewritten under a stamped position (see src/broker/cursor.ts):
-- it is past the head (offset), or the entry at offset n is still in the log but
-- is another one, its append time modulo 2^32 not the stamp. A failover to a
-- replica that lacked the last entries hands their offsets out again within the
-- same epoch. A missing stamp (a cursor that names no entry) or a missing entry
-- (trimmed) says nothing.
local function rewritten(log, base, n, stamp, offset)
  if not stamp or n <= 0 then return false end
  if n > offset then return true end
  local id = base .. '-' .. string.format('%d', n)
  local at = redis.call('XRANGE', log, id, id)[1]
  -- Fields in order t, e, d (scripts.ts): t is the append time in ms.
  return at ~= nil and tonumber(at[2][2]) % 4294967296 ~= stamp
end
