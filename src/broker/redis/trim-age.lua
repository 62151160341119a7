-- Drops entries appended at or before `cutoff` (the memory broker's rule: age >= maxAge).
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
