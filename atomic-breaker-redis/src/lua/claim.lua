-- CLAIM: ARGV[3] epoch seen, ARGV[4] generation seen, ARGV[5] token, ARGV[6] lease ms.
-- The one fleet trial: granted when the open period has passed, or when the previous owner's
-- lease has expired (a crashed owner cannot wedge the fleet). A new generation each time.
local seen = arg_int(4, 0, MAX_INT)
local lease = arg_int(6, 1, MAX_PERIOD)
local r, created = load()
if created then return publish(r) end
if r.epoch ~= ARGV[3] or r.gen ~= seen then return encode(r) end
if (r.state == 'open' and now >= r.deadline) or (r.state == 'half_open' and now >= r.lease) then
  r.state = 'half_open'
  r.owner = ARGV[5]
  r.lease = now + lease
  bump(r)
  return publish(r)
end
return encode(r)
