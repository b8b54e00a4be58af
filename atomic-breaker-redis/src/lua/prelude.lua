-- Shared by every script. KEYS[1] = the breaker's hash; ARGV[1] = TTL in ms; ARGV[2] = channel.
-- Time is Redis TIME, never a client clock. Every write refreshes the TTL and publishes the record.
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local channel = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function n(x) return string.format('%d', x) end
local function load()
  local v = redis.call('HMGET', key, 'epoch', 'gen', 'state', 'deadline', 'lease', 'owner', 'trips', 'opened_at')
  if not v[1] then
    return { epoch = t[1] .. '.' .. t[2], gen = 1, state = 'closed', deadline = 0, lease = 0,
             owner = '', trips = 0, opened_at = 0 }, true
  end
  return { epoch = v[1], gen = tonumber(v[2]), state = v[3], deadline = tonumber(v[4]),
           lease = tonumber(v[5]), owner = v[6], trips = tonumber(v[7]),
           opened_at = tonumber(v[8]) }, false
end
local function encode(r)
  local rem = math.max(r.deadline - now, 0)
  local lrem = math.max(r.lease - now, 0)
  return table.concat({ r.epoch, n(r.gen), r.state, n(rem), n(lrem), r.owner, n(r.trips),
                        n(r.opened_at), n(now) }, '|')
end
-- Saves a changed record, bumps nothing (the caller did), publishes it, returns it encoded.
local function publish(r)
  redis.call('HSET', key, 'epoch', r.epoch, 'gen', n(r.gen), 'state', r.state,
             'deadline', n(r.deadline), 'lease', n(r.lease), 'owner', r.owner,
             'trips', n(r.trips), 'opened_at', n(r.opened_at))
  redis.call('PEXPIRE', key, ttl)
  local m = encode(r)
  redis.call('PUBLISH', channel, m)
  return m
end
local function trip(r, ms)
  r.state = 'open'
  r.deadline = now + ms
  r.lease = 0
  r.owner = ''
  r.gen = r.gen + 1
  r.trips = r.trips + 1
  r.opened_at = now
end
