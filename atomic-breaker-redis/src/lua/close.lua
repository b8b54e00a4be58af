-- CLOSE: ARGV[3] epoch, ARGV[4] generation, ARGV[5] token. The trial owner's success closes
-- the fleet, only in the generation it claimed (a stale owner's success closes nothing).
local seen = arg_int(4, 0, MAX_INT)
local r, created = load()
if created then return publish(r) end
if r.state == 'half_open' and r.epoch == ARGV[3] and r.gen == seen and r.owner == ARGV[5] then
  r.state = 'closed'
  r.deadline = 0
  r.lease = 0
  r.owner = ''
  bump(r)
  return publish(r)
end
return encode(r)
