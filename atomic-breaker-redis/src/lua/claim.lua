-- CLAIM: ARGV[3] epoch seen, ARGV[4] generation seen, ARGV[5] token, ARGV[6] lease ms.
-- The one fleet trial: granted when the open period has passed, or when the previous owner's
-- lease has expired (a crashed owner cannot wedge the fleet). A new generation each time.
local r, missing = load()
if missing or r.epoch ~= ARGV[3] or r.gen ~= tonumber(ARGV[4]) then return encode(r) end
if (r.state == 'open' and now >= r.deadline) or (r.state == 'half_open' and now >= r.lease) then
  r.state = 'half_open'
  r.owner = ARGV[5]
  r.lease = now + tonumber(ARGV[6])
  r.gen = r.gen + 1
  return publish(r)
end
return encode(r)
