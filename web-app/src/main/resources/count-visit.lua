-- Counts one visit, exactly once per request id, in one atomic step.
-- KEYS[1] the total, KEYS[2] the hash of tallies per replica,
-- KEYS[3] and KEYS[4] the hashes of markers this request's id falls in: this window's and the last one's
-- ARGV[1] the replica's name, ARGV[2] the request id, ARGV[3] how long a hash of markers lives (ms),
-- ARGV[4] the time (Unix ms) after which the caller has given up on this attempt
-- Returns {number, repeat (1 or 0), {replica, tally, replica, tally, ...}}.

local seen = redis.call('HGET', KEYS[3], ARGV[2]) or redis.call('HGET', KEYS[4], ARGV[2])
if seen then
  -- A repeat (nginx failing over, or the service retrying after a lost reply): no new count.
  return {tonumber(seen), 1, redis.call('HGETALL', KEYS[2])}
end

-- A command that waited in a frozen or overloaded Redis must not count after its caller was
-- already told 503. Assumes Redis's clock and the caller's agree to well within the margin the
-- caller leaves (half its Redis timeout): true for one host, and for NTP-synced hosts.
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[4]) then
  return redis.error_reply('TOOLATE the caller gave up on this attempt; nothing was counted')
end

local number = redis.call('INCR', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[3], ARGV[2], number)
if redis.call('HLEN', KEYS[3]) == 1 then
  -- The marker that made the hash sets its life: it goes, whole, once no request can read it.
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return {number, 0, redis.call('HGETALL', KEYS[2])}
