-- Shared by every script. KEYS[1] = the breaker's hash; ARGV[1] = TTL in ms; ARGV[2] = channel.
-- Time is Redis TIME, never a client clock. Every write refreshes the TTL and publishes the record.
--
-- Every field read from Redis, and every number argument, is validated: decimal digits only,
-- range-checked (Lua numbers are doubles: integers are exact up to 2^53 - 1, and '%d' of
-- anything larger wraps to -2^63), never coerced. A record that fails validation (or a key that
-- is not a hash) is not trusted: it is deleted and re-created Closed in a new epoch, exactly as
-- after a wipe, and the reply says which field was bad.
local MAX_INT = 9007199254740991 -- 2^53 - 1
local MAX_PERIOD = 86400000      -- 24 h: atomic_breaker::MAX_PERIOD, the longest period or lease
local SLACK = 86400000           -- a stored time may be this far past now + MAX_PERIOD (clock steps)
local key = KEYS[1]
local channel = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function n(x) return string.format('%d', x) end
-- A decimal integer in [lo, hi], or nil.
local function int(s, lo, hi)
  if type(s) ~= 'string' or #s == 0 or #s > 16 or not string.find(s, '^%d+$') then return nil end
  local x = tonumber(s)
  if x < lo or x > hi then return nil end
  return x
end
-- ARGV[i] as an integer in [lo, hi]; an error reply (nothing written) otherwise.
local function arg_int(i, lo, hi)
  local x = int(ARGV[i], lo, hi)
  if not x then error({ err = 'ERR atomic-breaker: argument ' .. i .. ' out of range' }) end
  return x
end
local ttl = arg_int(1, 1, MAX_INT - now)
-- An epoch: TIME's 'seconds.micros' when the record was created; a token: '<host>-<pid>-<n>'.
local function epoch_ok(s) return type(s) == 'string' and #s > 0 and #s <= 64 and string.find(s, '^[%w%.%-_:]+$') ~= nil end
local function token_ok(s) return type(s) == 'string' and #s <= 128 and not string.find(s, '[|%s]') end
local STATES = { closed = true, open = true, half_open = true, forced_open = true, disabled = true }
local function fresh(why)
  return { epoch = t[1] .. '.' .. t[2], gen = 1, state = 'closed', deadline = 0, lease = 0,
           owner = '', trips = 0, opened_at = 0, replaced = why or '' }, true
end
-- The record, and whether it was just created (missing, or replaced because it was corrupted).
-- A created record has generation 1 and is not saved yet: every script saves it (publish).
local function load()
  local ty = redis.call('TYPE', key)['ok']
  if ty == 'none' then return fresh() end
  if ty ~= 'hash' then
    redis.call('DEL', key)
    return fresh('type')
  end
  local v = redis.call('HMGET', key, 'epoch', 'gen', 'state', 'deadline', 'lease', 'owner', 'trips', 'opened_at')
  local late = now + MAX_PERIOD + SLACK
  local r = { epoch = v[1], gen = int(v[2], 1, MAX_INT), state = v[3], deadline = int(v[4], 0, late),
              lease = int(v[5], 0, late), owner = v[6], trips = int(v[7], 0, MAX_INT),
              opened_at = int(v[8], 0, late), replaced = '' }
  local bad = nil
  if not epoch_ok(r.epoch) then bad = 'epoch'
  elseif not r.gen then bad = 'gen'
  elseif not STATES[r.state] then bad = 'state'
  elseif not r.deadline then bad = 'deadline'
  elseif not r.lease then bad = 'lease'
  elseif not token_ok(r.owner) or (r.state == 'half_open' and r.owner == '') then bad = 'owner'
  elseif not r.trips then bad = 'trips'
  elseif not r.opened_at then bad = 'opened_at'
  end
  if bad then
    redis.call('DEL', key)
    return fresh(bad)
  end
  return r, false
end
local function encode(r)
  local rem = math.max(r.deadline - now, 0)
  local lrem = math.max(r.lease - now, 0)
  return table.concat({ r.epoch, n(r.gen), r.state, n(rem), n(lrem), r.owner, n(r.trips),
                        n(r.opened_at), n(now), r.replaced }, '|')
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
local function bump(r)
  r.gen = r.gen + 1
end
local function trip(r, ms)
  r.state = 'open'
  r.deadline = now + ms
  r.lease = 0
  r.owner = ''
  bump(r)
  r.trips = math.min(r.trips + 1, MAX_INT)
  r.opened_at = now
end
