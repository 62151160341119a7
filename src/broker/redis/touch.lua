-- KEYS: meta, log. ARGV: ttl of an empty topic. Keeps a topic with live
-- listeners from expiring (the memory broker never forgets a topic someone
-- listens to) and returns the id of its newest entry, where the live reader
-- starts ('0-0' for none). An empty topic is kept only for the short ttl, so
-- that listening to random names leaves nothing behind for long.
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
local age = redis.call('HGET', KEYS[1], 'age')
if newest and age then redis.call('PEXPIRE', KEYS[1], age)
elseif age then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if newest then return newest[1] end
return '0-0'
