-- RENEW: ARGV[3] epoch, ARGV[4] generation, ARGV[5] token, ARGV[6] lease ms. The trial owner
-- extends its lease while its trial call is still running. Not a state change: no new
-- generation, no message (the others' claims are refused until the new lease ends).
local seen = arg_int(4, 0, MAX_INT)
local lease = arg_int(6, 1, MAX_PERIOD)
local r, created = load()
if created then return publish(r) end
if r.state == 'half_open' and r.epoch == ARGV[3] and r.gen == seen and r.owner == ARGV[5] then
  r.lease = now + lease
  redis.call('HSET', key, 'lease', n(r.lease))
  redis.call('PEXPIRE', key, ttl)
end
return encode(r)
