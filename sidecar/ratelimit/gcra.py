"""GCRA in one Lua script: one atomic round trip decides for every bucket a call needs.

GCRA keeps one number per bucket, the theoretical arrival time (TAT): with emission interval
T = 1 / rate and tolerance tau = (burst - 1) * T, a call may go at time s when TAT - s <= tau,
and then TAT = max(TAT, s) + T. That is exactly a token bucket of `burst` tokens (every window of
length t holds at most rate * t + burst admissions), held in one Redis value.

Times are Redis' own clock (`TIME`), in microseconds, so pods whose clocks differ still agree.

KEYS[1] is the global bucket, a hash {tat, ctat, nw}; KEYS[2..] are endpoint buckets (strings).
ARGV: lane (0 normal, 1 critical), horizon, hold, now (0: Redis' clock; tests and the bench
replay a schedule with it), T, tau, reserve, Tc, then T_i, tau_i per endpoint key. All times in
microseconds.

- Lanes: normal calls may not use the last `reserve` of the tolerance (the critical reserve), so
  under any normal load a critical call finds a token at once. While normal calls wait (`nw` is
  in the future), critical calls are also held to the interval Tc = T / critical_max_share
  (`ctat`): a flood of them leaves normal calls their share, fleet-wide.
- Reservations: when the slot is at most `horizon` ahead, it is booked and its time answered;
  the caller sleeps until then (woken when its slot comes; nobody polls). Beyond the horizon
  nothing is booked and the answer is negative: the time until the slot, to retry then.
- A missing key is a full bucket (keys expire only once full), except when `hold` is given: a
  pod coming back from its local fallback after Redis lost its data creates the key empty and
  `hold` in the future, so the shared bucket admits nothing until every pod has stopped
  admitting on its own (their fallback probes come within the hold).

Answer: {wait (>= 0 booked, < 0 refused), blocker (0 global or lane, i >= 1 endpoint key i+1),
TAT - now of the global bucket after the decision}.
"""

from __future__ import annotations

SCRIPT = """
local lane, horizon, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local T, tau, reserve, Tc = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  tonumber(ARGV[8])
local g = redis.call('HMGET', KEYS[1], 'tat', 'ctat', 'nw')
local tat, created = tonumber(g[1]), false
if not tat then
  created = true
  if hold > 0 then tat = now + hold + tau + T else tat = now end
end
local ctat, nw = tonumber(g[2]) or 0, tonumber(g[3]) or 0
local limit = tau
if lane == 0 then limit = tau - reserve end
local at, blocker = math.max(now, tat - limit), 0
if lane == 1 and nw > now and ctat - tau > at then at = ctat - tau end
local eps = {}
for i = 2, #KEYS do
  local Ti, taui = tonumber(ARGV[7 + 2 * i - 2]), tonumber(ARGV[8 + 2 * i - 2])
  local e = tonumber(redis.call('GET', KEYS[i])) or now
  eps[i] = e
  if e - taui > at then at, blocker = e - taui, i - 1 end
end
local wait = at - now
if lane == 0 and wait > 0 then nw = math.max(nw, at + 2 * T) end
if wait > horizon then
  if lane == 0 or created then
    redis.call('HSET', KEYS[1], 'tat', tat, 'nw', nw)
    redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tat, nw) - now) / 1000) + 1000)
  end
  return {-math.max(1, math.ceil(wait)), blocker, tat - now}
end
tat = math.max(tat, at) + T
if lane == 1 then ctat = math.max(ctat, at) + Tc end
redis.call('HSET', KEYS[1], 'tat', tat, 'ctat', ctat, 'nw', nw)
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(tat, ctat, nw) - now) / 1000) + 1000)
for i = 2, #KEYS do
  local Ti = tonumber(ARGV[7 + 2 * i - 2])
  local e = math.max(eps[i], at) + Ti
  redis.call('SET', KEYS[i], e, 'PX', math.ceil((e - now) / 1000) + 1000)
end
return {math.floor(wait), blocker, tat - now}
"""

# What a pod admitted on its own while Redis was out of reach, charged to the shared bucket when
# Redis answers again (its fallback probe): a pod that fell back for a slow answer while the
# others kept sharing thus costs the fleet's bucket what it sent. The charge may empty the
# normal share but never eats the critical reserve (a critical call still goes at once). A
# missing key (Redis lost its data) is created as after a hold (see above).
# With n = 0 it is the fallback probe: it checks that scripts run and writes succeed (a
# Redis out of memory answers PING but refuses writes). KEYS[1]: the global bucket;
# ARGV: n, T, tau, hold, reserve.
CHARGE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n, T, tau, hold = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local reserve = tonumber(ARGV[5])
local g = redis.call('HMGET', KEYS[1], 'tat', 'ctat', 'nw')
if n == 0 then  -- the probe with nothing to charge: the script runs and may write, no more
  if g[1] then redis.call('HSET', KEYS[1], 'tat', g[1]) end
  return 1
end
local tat = tonumber(g[1]) or (now + hold + tau + T)
tat = math.min(math.max(tat, now) + n * T, math.max(tat, now + tau - reserve))
redis.call('HSET', KEYS[1], 'tat', tat)
local last = math.max(tat, tonumber(g[2]) or 0, tonumber(g[3]) or 0)
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) / 1000) + 1000)
return 1
"""
