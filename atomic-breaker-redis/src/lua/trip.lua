-- TRIP: ARGV[3] epoch seen ('' if never synced), ARGV[4] generation seen, ARGV[5] open period
-- ms, ARGV[6] token. Opens the fleet if the caller's view is current: Closed in the same
-- generation, or HalfOpen with the caller owning the trial. Also accepted when Closed:
-- - a record created since the caller last synced (another epoch: first use, a wipe, TTL
--   expiry, a corrupted record replaced) and unchanged since (generation 1): the failures were
--   real and nobody has decided anything since;
-- - a caller that never synced (it tripped while Redis was unreachable since its start).
-- Anything else is a stale report: no change. In particular a record another epoch has moved on
-- from generation 1 (an operator's close after a wipe, a trial's close) wins over a trip from
-- before it.
local seen = arg_int(4, 0, MAX_INT)
local period = arg_int(5, 0, MAX_PERIOD)
local r, created = load()
local same_epoch = r.epoch == ARGV[3]
local ok = false
if r.state == 'closed' then
  ok = (same_epoch and r.gen == seen) or (not same_epoch and (r.gen == 1 or ARGV[3] == ''))
elseif r.state == 'half_open' then
  ok = same_epoch and r.gen == seen and r.owner == ARGV[6]
end
if ok then
  trip(r, period)
  return publish(r)
end
if created then return publish(r) end
return encode(r)
