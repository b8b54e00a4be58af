-- MANAGE: ARGV[3] operation, ARGV[4] period ms (open, trip_for). An operator's move: applies
-- whatever the state. `open` is a no-op when already open, `force_open` and `disable` when
-- already in that state; `close` always makes a new generation, even on a Closed record, so
-- that every report made before it (a trip from before a wipe, a trip in flight) is stale and
-- cannot undo it. `reset` deletes the record and creates it again, Closed, in a new epoch (as
-- after a wipe: processes holding a local trip re-publish it).
local op = ARGV[3]
local ms = arg_int(4, 0, MAX_PERIOD)
if op == 'reset' then
  redis.call('DEL', key)
  local r = fresh()
  return publish(r)
end
local r, created = load()
if op == 'open' then
  if r.state == 'open' then return encode(r) end
  trip(r, ms)
elseif op == 'trip_for' then
  trip(r, ms)
elseif op == 'close' or op == 'force_open' or op == 'disable' then
  local target = ({ close = 'closed', force_open = 'forced_open', disable = 'disabled' })[op]
  if r.state == target and op ~= 'close' and not created then return encode(r) end
  r.state = target
  r.deadline = 0
  r.lease = 0
  r.owner = ''
  bump(r)
else
  return redis.error_reply('ERR atomic-breaker: unknown operation ' .. op)
end
return publish(r)
