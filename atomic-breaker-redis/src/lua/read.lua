-- READ: the record (created closed, with a new epoch, if missing or corrupted); refreshes the TTL.
local r, created = load()
if created then return publish(r) end
redis.call('PEXPIRE', key, ttl)
return encode(r)
