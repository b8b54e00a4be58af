-- MANAGE: ARGV[3] operation, ARGV[4] period ms (open, trip_for). An operator's move: applies
-- whatever the state (open is a no-op when already open, close when already closed).
local r, missing = load()
local op = ARGV[3]
local ms = tonumber(ARGV[4])
if op == 'open' then
  if r.state == 'open' then return encode(r) end
  trip(r, ms)
elseif op == 'trip_for' then
  trip(r, ms)
elseif op == 'close' or op == 'force_open' or op == 'disable' then
  local target = ({ close = 'closed', force_open = 'forced_open', disable = 'disabled' })[op]
  if r.state == target and not missing then return encode(r) end
  r.state = target
  r.deadline = 0
  r.lease = 0
  r.owner = ''
  r.gen = r.gen + 1
else
  return redis.error_reply('unknown operation ' .. op)
end
return publish(r)
