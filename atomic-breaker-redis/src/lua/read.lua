-- READ: the record (created closed, with a new epoch, if missing); refreshes the TTL.
local r, missing = load()
if missing then return publish(r) end
redis.call('PEXPIRE', key, ttl)
return encode(r)
