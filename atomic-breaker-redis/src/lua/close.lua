-- CLOSE: ARGV[3] epoch, ARGV[4] generation, ARGV[5] token. The trial owner's success closes
-- the fleet, only in the generation it claimed (a stale owner's success closes nothing).
local r, missing = load()
if not missing and r.state == 'half_open' and r.epoch == ARGV[3]
   and r.gen == tonumber(ARGV[4]) and r.owner == ARGV[5] then
  r.state = 'closed'
  r.deadline = 0
  r.lease = 0
  r.owner = ''
  r.gen = r.gen + 1
  return publish(r)
end
return encode(r)
