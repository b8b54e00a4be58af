-- RENEW: ARGV[3] epoch, ARGV[4] generation, ARGV[5] token, ARGV[6] lease ms. The trial owner
-- extends its lease while its trial call is still running. Not a state change: no new
-- generation, no message (the others' claims are refused until the new lease ends).
local r, missing = load()
if not missing and r.state == 'half_open' and r.epoch == ARGV[3]
   and r.gen == tonumber(ARGV[4]) and r.owner == ARGV[5] then
  r.lease = now + tonumber(ARGV[6])
  redis.call('HSET', key, 'lease', n(r.lease))
  redis.call('PEXPIRE', key, ttl)
end
return encode(r)
