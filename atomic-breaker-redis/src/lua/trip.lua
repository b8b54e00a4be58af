-- TRIP: ARGV[3] epoch seen, ARGV[4] generation seen, ARGV[5] open period ms, ARGV[6] token.
-- Opens the fleet if the caller's view is current: Closed in the same generation, or HalfOpen
-- with the caller owning the trial. A record re-created after a wipe (other epoch) that is
-- Closed also accepts it: the failures were real. Anything else is a stale report: no change.
local r, missing = load()
local current = (r.epoch == ARGV[3] and r.gen == tonumber(ARGV[4]))
local ok = false
if r.state == 'closed' then
  ok = missing or current or r.epoch ~= ARGV[3]
elseif r.state == 'half_open' then
  ok = current and r.owner == ARGV[6]
end
if ok then
  trip(r, tonumber(ARGV[5]))
  return publish(r)
end
return encode(r)
