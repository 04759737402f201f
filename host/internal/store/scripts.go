package store

import "github.com/gomodule/redigo/redis"

// luaRule is job.CanMove in Lua; TestRuleAgreesWithCanMove keeps them equal.
const luaRule = `
local CODE = {Pending=0, Scheduled=1, Running=2, Stopped=3, Error=3, Success=3}
local function can_move(from, from_rev, to, to_rev)
  local tc = CODE[to]
  if tc == nil then return false end
  if to_rev > from_rev then return true end
  if to_rev < from_rev then return false end
  local fc = CODE[from]
  if fc == nil then fc = -1 end
  return tc > fc
end
local function reply(tag, key)
  local out = redis.call('hgetall', key)
  table.insert(out, 1, tag)
  return out
end
local function push(mode, key, entry, score, known, name, doorbell, timer)
  if mode == 'list' then
    redis.call('lpush', key, entry)
    redis.call('publish', doorbell, name)
  elseif mode == 'zset' then
    redis.call('zadd', key, score, entry)
    redis.call('publish', timer, score)
  end
  if mode ~= 'none' then redis.call('sadd', known, name) end
end
-- trim keeps in an executions set the cap newest executions that have
-- ended, dropping older ended ones with their stats; executions still to
-- run are never dropped (their number is bounded by the scheduler's
-- horizon and by what runs).
local function trim(key, cap, prefix)
  if cap <= 0 or redis.call('zcard', key) <= cap then return end
  local ended = 0
  for _, m in ipairs(redis.call('zrevrange', key, 0, -1)) do
    local c = redis.call('hmget', prefix .. m, 'status', 'retry_at')
    if not c[1] or c[1] == 'Stopped' or c[1] == 'Success' or (c[1] == 'Error' and not c[2]) then
      ended = ended + 1
      if ended > cap then
        redis.call('zrem', key, m)
        redis.call('del', prefix .. m)
      end
    end
  end
end
-- link adds job id to an executions set at score and trims the set.
local function link(key, score, id, cap, prefix, ttl)
  redis.call('zadd', key, score, id)
  if ttl > 0 then redis.call('expire', key, ttl) end
  trim(key, cap, prefix)
end
local function set_ttl(key, ttl)
  if ttl > 0 then redis.call('expire', key, ttl) else redis.call('persist', key) end
end
-- Scripts that change statuses take nine trailing ARGV (see
-- Store.changeArgs): executions key prefix, stats key prefix, executions
-- cap, running index, event list prefix, due set, hooks channel, cap, now
-- in ms.
--
-- track keeps the index of running jobs (by last progress) in step with
-- a job's new status.
local function track(id, status, at)
  local running = ARGV[#ARGV-5]
  if status == 'Running' then
    redis.call('zadd', running, at, id)
  else
    redis.call('zrem', running, id)
  end
end
-- emit queues a status hook event of the job whose stats are at key, when
-- the job has a hook: a snapshot of its stats (and the check-in message of
-- a check-in event) appended to the job's event list, and the job made due
-- for delivery. A check-in is not queued when the job already has cap
-- events waiting (status changes always are).
local function emit(key, checkin)
  local n = #ARGV
  local prefix, due, chan, cap, now_ms = ARGV[n-4], ARGV[n-3], ARGV[n-2], tonumber(ARGV[n-1]), ARGV[n]
  local url = redis.call('hget', key, 'web_hook_url')
  if not url or url == '' then return end
  local id = redis.call('hget', key, 'id')
  local list = prefix .. id
  if checkin and redis.call('llen', list) >= cap then return end
  local flat = redis.call('hgetall', key)
  local snap = {}
  for i = 1, #flat, 2 do snap[flat[i]] = flat[i+1] end
  redis.call('rpush', list, cjson.encode({s = snap, c = checkin or ''}))
  redis.call('expire', list, 604800)
  redis.call('zadd', due, 'NX', now_ms, id)
  redis.call('publish', chan, id)
end
-- zrem_job removes the entry of job id from a gocraft/work sorted set,
-- looking only at scores in [lo, hi].
local function zrem_job(key, lo, hi, id)
  local found = 0
  for _, m in ipairs(redis.call('zrangebyscore', key, lo, hi)) do
    local ok, j = pcall(cjson.decode, m)
    if ok and j['id'] == id then
      redis.call('zrem', key, m)
      found = found + 1
    end
  end
  return found
end
`

// scriptCreate writes a new job's stats and queues its entry, refusing a
// duplicate unique job, and links a sub-job to its parent's executions.
//
// KEYS: stats, queue (list or zset), known_jobs, unique (or stats again),
//
//	parent's executions (or stats again)
//
// ARGV: mode (list|zset|none), entry, score, name, id, doorbell channel,
//
//	timer channel, unique (1|0), link (1|0), executions cap, stats key
//	prefix, executions ttl, field, value, ...
var scriptCreate = redis.NewScript(5, luaRule+`
if redis.call('exists', KEYS[1]) == 1 then return {'exists'} end
if ARGV[8] == '1' then
  if not redis.call('set', KEYS[4], ARGV[5], 'NX', 'EX', 86400) then
    return {'dup', redis.call('get', KEYS[4]) or ''}
  end
end
redis.call('hset', KEYS[1], unpack(ARGV, 14))
push(ARGV[1], KEYS[2], ARGV[2], ARGV[3], KEYS[3], ARGV[4], ARGV[6], ARGV[7])
if ARGV[9] == '1' then
  link(KEYS[5], ARGV[13], ARGV[5], tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12]))
end
return {'ok'}
`)

// scriptCreateExecution creates the execution of an active periodic
// policy at fire time t, once: a fire time at or before the policy's last
// one is refused, so that every host may try every fire time and exactly
// one succeeds.
//
// KEYS: execution stats, scheduled, known_jobs, policy's executions,
//
//	policy stats
//
// ARGV: entry, t, name, execution id, timer channel, executions cap,
//
//	stats key prefix, executions ttl, field, value, ...
var scriptCreateExecution = redis.NewScript(5, luaRule+`
local p = redis.call('hmget', KEYS[5], 'status', 'last_fire')
if p[1] ~= 'Scheduled' then return {'inactive'} end
local t = tonumber(ARGV[2])
if t <= (tonumber(p[2]) or 0) then return {'old'} end
redis.call('hset', KEYS[5], 'last_fire', t)
if redis.call('exists', KEYS[1]) == 1 then return {'exists'} end
redis.call('hset', KEYS[1], unpack(ARGV, 9))
push('zset', KEYS[2], ARGV[1], t, KEYS[3], ARGV[3], '', ARGV[5])
link(KEYS[4], t, ARGV[4], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8]))
return {'ok'}
`)

// scriptStart moves a job a worker took to Running: in its revision when
// it was Pending or Scheduled, in a new revision when it was Running (its
// host died) or waiting for a retry. A job asked to stop whose host died
// ends Stopped instead.
//
// KEYS: stats
// ARGV: now, stopped ttl, change args (9)
//
// It answers {outcome, revision, parameters, upstream_job_id, op_command}:
// what the runner needs, not the whole hash (this is the hot path).
var scriptStart = redis.NewScript(1, luaRule+`
local cur = redis.call('hmget', KEYS[1], 'status', 'revision', 'op_command', 'retry_at', 'id', 'parameters', 'upstream_job_id')
local status = cur[1]
if not status then return {'missing'} end
local rev = tonumber(cur[2]) or 0
local now = tonumber(ARGV[1])
local to_rev = rev
if status == 'Running' and cur[3] and cur[3] ~= '' then
  redis.call('hset', KEYS[1], 'status', 'Stopped', 'update_time', now)
  redis.call('hdel', KEYS[1], 'retry_at')
  set_ttl(KEYS[1], tonumber(ARGV[2]))
  track(cur[5], 'Stopped', now)
  emit(KEYS[1])
  return {'stopped', tostring(rev), cur[6] or '', cur[7] or '', cur[3]}
end
if status == 'Running' or (status == 'Error' and (tonumber(cur[4]) or 0) > 0) then
  to_rev = math.max(now, rev + 1)
end
if not can_move(status, rev, 'Running', to_rev) then return {'refused', status} end
redis.call('hset', KEYS[1], 'status', 'Running', 'revision', to_rev, 'update_time', now)
redis.call('hdel', KEYS[1], 'retry_at', 'op_command')
redis.call('persist', KEYS[1])
track(cur[5], 'Running', now)
emit(KEYS[1])
return {'ok', tostring(to_rev), cur[6] or '', cur[7] or '', ''}
`)

// scriptMove changes a job's status by job.CanMove's rule, sets or deletes
// fields (an empty value deletes), sets the TTL, and may queue the job
// again.
//
// KEYS: stats, [queue, known_jobs]
// ARGV: to, revision ("same", "next" or a number), now, ttl, push mode,
//
//	entry, score, name, field, value, ...
var scriptMove = redis.NewScript(-1, luaRule+`
local cur = redis.call('hmget', KEYS[1], 'status', 'revision', 'id', 'upstream_job_id')
if not cur[1] then return {'missing'} end
local rev = tonumber(cur[2]) or 0
local to, now = ARGV[1], tonumber(ARGV[3])
local to_rev
if ARGV[2] == 'same' then to_rev = rev
elseif ARGV[2] == 'next' then to_rev = math.max(now, rev + 1)
else to_rev = tonumber(ARGV[2]) end
if cur[1] == to and to_rev == rev then return {'same', to, tostring(rev), cur[3]} end
if not can_move(cur[1], rev, to, to_rev) then return {'refused', cur[1], tostring(rev)} end
redis.call('hset', KEYS[1], 'status', to, 'revision', to_rev, 'update_time', now)
for i = 12, 11 + 2 * tonumber(ARGV[11]), 2 do
  if ARGV[i+1] == '' then redis.call('hdel', KEYS[1], ARGV[i])
  else redis.call('hset', KEYS[1], ARGV[i], ARGV[i+1]) end
end
set_ttl(KEYS[1], tonumber(ARGV[4]))
if #KEYS >= 3 then push(ARGV[5], KEYS[2], ARGV[6], ARGV[7], KEYS[3], ARGV[8], ARGV[9], ARGV[10]) end
track(cur[3], to, now)
-- An execution that ends keeps its parent's set of executions trimmed.
if cur[4] and (to == 'Success' or to == 'Stopped' or (to == 'Error' and not redis.call('hget', KEYS[1], 'retry_at'))) then
  local n = #ARGV
  trim(ARGV[n-8] .. cur[4], tonumber(ARGV[n-6]), ARGV[n-7])
end
-- A job queued again (Pending) is not announced, as on submission.
if to ~= 'Pending' then emit(KEYS[1]) end
return {'ok', to, tostring(to_rev), cur[3]}
`)

// scriptCheckin records a running job's check-in. check_in_at strictly
// increases per job, so it may run ahead of the clock by a second per
// extra check-in within one second.
//
// KEYS: stats
// ARGV: message, now, revision, change args (9)
var scriptCheckin = redis.NewScript(1, luaRule+`
local cur = redis.call('hmget', KEYS[1], 'status', 'revision', 'check_in_at', 'id')
if not cur[1] then return {'missing'} end
if cur[1] ~= 'Running' or tonumber(cur[2]) ~= tonumber(ARGV[3]) then return {'refused', cur[1]} end
local now = tonumber(ARGV[2])
local at = math.max(now, (tonumber(cur[3]) or 0) + 1)
redis.call('hset', KEYS[1], 'check_in', ARGV[1], 'check_in_at', at, 'update_time', now)
track(cur[4], 'Running', now)
emit(KEYS[1], ARGV[1])
return reply('ok', KEYS[1])
`)

// scriptStop stops or cancels a job. A queued job (pending, scheduled or
// waiting for a retry) leaves its queue and ends Stopped here; a running
// job is marked and signalled on the signals channel, and its runner ends
// it. A final job is left alone.
//
// KEYS: stats, queue, scheduled, retry, unique (the stats key again when
//
//	the job is not unique)
//
// ARGV: op, now, stopped ttl, pending entry, signals channel, change args (9)
var scriptStop = redis.NewScript(5, luaRule+`
local cur = redis.call('hmget', KEYS[1], 'status', 'revision', 'retry_at', 'run_at', 'op_command', 'id')
local status = cur[1]
if not status then return {'missing'} end
local rev = tonumber(cur[2]) or 0
local retry_at = tonumber(cur[3]) or 0
local run_at = tonumber(cur[4]) or 0
local now = tonumber(ARGV[2])
local id = cur[6]
if status == 'Running' then
  if not cur[5] or cur[5] == '' then redis.call('hset', KEYS[1], 'op_command', ARGV[1]) end
  redis.call('publish', ARGV[5], ARGV[1] .. ' ' .. id)
  return {'signalled', status}
end
local to_rev = rev
if status == 'Pending' then
  redis.call('lrem', KEYS[2], 1, ARGV[4])
elseif status == 'Scheduled' then
  zrem_job(KEYS[3], run_at, run_at, id)
elseif status == 'Error' and retry_at > 0 then
  zrem_job(KEYS[4], retry_at - 5, retry_at + 5, id)
  to_rev = math.max(now, rev + 1)
else
  return {'final', status}
end
redis.call('hset', KEYS[1], 'status', 'Stopped', 'revision', to_rev, 'update_time', now, 'op_command', ARGV[1])
redis.call('hdel', KEYS[1], 'retry_at')
set_ttl(KEYS[1], tonumber(ARGV[3]))
if KEYS[5] ~= KEYS[1] and redis.call('get', KEYS[5]) == id then redis.call('del', KEYS[5]) end
emit(KEYS[1])
return reply('stopped', KEYS[1])
`)

// scriptRetry re-runs a job in Error now, in a new revision, with a fresh
// failure count; a job waiting for an automatic retry leaves the retry set.
//
// KEYS: stats, queue, known_jobs, retry
// ARGV: now, entry, name, doorbell channel
var scriptRetry = redis.NewScript(4, luaRule+`
local cur = redis.call('hmget', KEYS[1], 'status', 'revision', 'retry_at', 'id')
if not cur[1] then return {'missing'} end
if cur[1] ~= 'Error' then return {'refused', cur[1]} end
local now = tonumber(ARGV[1])
local retry_at = tonumber(cur[3]) or 0
-- A job waiting for its automatic retry has an entry somewhere: in the
-- retry set (taken out here and replaced), or already back in its queue
-- (then it runs from there, and must not be queued twice).
local queued = retry_at > 0 and zrem_job(KEYS[4], retry_at - 5, retry_at + 5, cur[4]) == 0
redis.call('hset', KEYS[1], 'status', 'Pending', 'revision', math.max(now, (tonumber(cur[2]) or 0) + 1), 'update_time', now)
redis.call('hdel', KEYS[1], 'retry_at', 'op_command')
redis.call('persist', KEYS[1])
if not queued then push('list', KEYS[2], ARGV[2], 0, KEYS[3], ARGV[3], ARGV[4], '') end
return reply('ok', KEYS[1])
`)

// scriptStopPolicy unschedules a periodic policy and stops its executions
// that have not started: a scheduled one leaves the scheduled set, one
// waiting for a retry leaves the retry set (in a new revision), a pending
// one is marked so that no worker runs it.
//
// KEYS: policy stats, policies, policy's executions, scheduled, retry
// ARGV: op, now, stopped ttl, stats key prefix, policy id, change args (9)
var scriptStopPolicy = redis.NewScript(5, luaRule+`
local st = redis.call('hget', KEYS[1], 'status')
if not st then return {'missing'} end
redis.call('srem', KEYS[2], ARGV[5])
if st ~= 'Scheduled' then return {'final', st} end
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local function stop(key)
  redis.call('hset', key, 'status', 'Stopped', 'update_time', now, 'op_command', ARGV[1])
  set_ttl(key, ttl)
  emit(key)
end
stop(KEYS[1])
local n = 0
for _, m in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do
  local key = ARGV[4] .. m
  local c = redis.call('hmget', key, 'status', 'run_at', 'retry_at', 'revision')
  if c[1] == 'Error' and c[3] then
    local at = tonumber(c[3]) or 0
    zrem_job(KEYS[5], at - 5, at + 5, m)
    redis.call('hset', key, 'revision', math.max(now, (tonumber(c[4]) or 0) + 1))
    redis.call('hdel', key, 'retry_at')
    stop(key)
    n = n + 1
  elseif c[1] == 'Scheduled' then
    local at = tonumber(c[2]) or 0
    zrem_job(KEYS[4], at, at, m)
    stop(key)
    n = n + 1
  elseif c[1] == 'Pending' then
    stop(key)
    n = n + 1
  end
end
if ttl > 0 then redis.call('expire', KEYS[3], ttl) end
return {'stopped', tostring(n)}
`)

// scriptMoveDue moves the entries of the scheduled and retry sets that
// are due into their queues, as gocraft/work's own requeuer does once a
// second, but at the due second, and rings the doorbell for each. The
// entry's bytes are queued as they are (no re-encoding). It answers how
// many it moved, how many malformed entries it dropped, and the score of
// the next entry not yet due (” when none).
//
// KEYS: scheduled, retry
// ARGV: now, jobs key prefix, doorbell channel, limit
var scriptMoveDue = redis.NewScript(2, `
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[4])
local moved, bad = 0, 0
local next_at = nil
for _, set in ipairs(KEYS) do
  for _, m in ipairs(redis.call('zrangebyscore', set, '-inf', now, 'LIMIT', 0, limit)) do
    if redis.call('zrem', set, m) == 1 then
      local ok, j = pcall(cjson.decode, m)
      if ok and type(j) == 'table' and type(j['name']) == 'string' then
        redis.call('lpush', ARGV[2] .. j['name'], m)
        redis.call('publish', ARGV[3], j['name'])
        moved = moved + 1
      else
        bad = bad + 1
      end
    end
  end
  local first = redis.call('zrange', set, 0, 0, 'WITHSCORES')
  if first[2] then
    local at = tonumber(first[2])
    if next_at == nil or at < next_at then next_at = at end
  end
end
return {moved, bad, next_at and tostring(next_at) or ''}
`)

// scriptClaimHook takes the next job whose hook event is due, skipping
// (and dropping) events outdated by an acknowledged newer one, and leases
// the job for the delivery so that no other worker sends its events
// meanwhile. Answers {'event', id, event, attempts} or {'none', next due
// in ms or ”}.
//
// KEYS: due, attempts
// ARGV: now ms, lease ms, event list prefix, stats key prefix
var scriptClaimHook = redis.NewScript(2, luaRule+`
local now = tonumber(ARGV[1])
local function outdated(ev, ackraw)
  local ok, ack = pcall(cjson.decode, ackraw)
  if not ok or type(ack) ~= 'table' then return false end
  local s = ev['s']
  local rev, arev = tonumber(s['revision']) or 0, tonumber(ack['revision']) or 0
  if arev ~= rev then return arev > rev end
  local code, acode = CODE[s['status']] or -1, CODE[ack['status']] or -1
  if acode ~= code then return acode > code end
  if ev['c'] ~= '' then
    return (tonumber(ack['check_in_at']) or 0) >= (tonumber(s['check_in_at']) or 0)
  end
  return ack['status'] == s['status']
end
for _ = 1, 100 do
  local m = redis.call('zrangebyscore', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  if #m == 0 then
    local first = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
    return {'none', first[2] or ''}
  end
  local id = m[1]
  local list = ARGV[3] .. id
  local raw = redis.call('lindex', list, 0)
  if not raw then
    redis.call('zrem', KEYS[1], id)
    redis.call('hdel', KEYS[2], id)
  else
    local ok, ev = pcall(cjson.decode, raw)
    local ackraw = redis.call('hget', ARGV[4] .. id, 'ack')
    if not ok or type(ev) ~= 'table' or type(ev['s']) ~= 'table' or (ackraw and outdated(ev, ackraw)) then
      redis.call('lpop', list)
      redis.call('hdel', KEYS[2], id)
    else
      redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), id)
      return {'event', id, raw, redis.call('hget', KEYS[2], id) or '0'}
    end
  end
end
return {'none', tostring(now)}
`)

// scriptAckHook records a delivered event: it leaves the job's list, the
// job's ack moves forward (never back), and the job's next event, if any,
// is due at once.
//
// KEYS: due, attempts, event list, stats
// ARGV: event, now ms, id, ack JSON, ack revision, ack status, ack check_in_at
var scriptAckHook = redis.NewScript(4, luaRule+`
if redis.call('lindex', KEYS[3], 0) == ARGV[1] then redis.call('lpop', KEYS[3]) end
redis.call('hdel', KEYS[2], ARGV[3])
if redis.call('exists', KEYS[4]) == 1 then
  local newer = true
  local cur = redis.call('hget', KEYS[4], 'ack')
  if cur then
    local ok, a = pcall(cjson.decode, cur)
    if ok and type(a) == 'table' then
      local rev, arev = tonumber(ARGV[5]), tonumber(a['revision']) or 0
      local code, acode = CODE[ARGV[6]] or -1, CODE[a['status']] or -1
      local at, aat = tonumber(ARGV[7]), tonumber(a['check_in_at']) or 0
      newer = rev > arev or (rev == arev and (code > acode or (code == acode and at >= aat)))
    end
  end
  if newer then redis.call('hset', KEYS[4], 'ack', ARGV[4]) end
end
if redis.call('llen', KEYS[3]) > 0 then
  redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
else
  redis.call('zrem', KEYS[1], ARGV[3])
end
return 'ok'
`)

// scriptFailHook counts a failed delivery and makes the job due again
// later.
//
// KEYS: due, attempts
// ARGV: id, due at ms
var scriptFailHook = redis.NewScript(2, `
redis.call('hincrby', KEYS[2], ARGV[1], 1)
redis.call('zadd', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 'ok'
`)

// scriptReapPool re-queues the jobs a dead worker pool had taken (its
// in-progress lists, as gocraft/work names them), gives back the
// concurrency slots it held, and forgets the pool.
//
// KEYS: worker pools set, the pool's heartbeat
// ARGV: pool id, jobs key prefix, doorbell channel, job name, ...
var scriptReapPool = redis.NewScript(2, `
local pool, prefix = ARGV[1], ARGV[2]
local moved = 0
for i = 4, #ARGV do
  local name = ARGV[i]
  local queue = prefix .. name
  local inprog = queue .. ':' .. pool .. ':inprogress'
  while redis.call('rpoplpush', inprog, queue) do
    moved = moved + 1
    redis.call('publish', ARGV[3], name)
  end
  local held = tonumber(redis.call('hget', queue .. ':lock_info', pool))
  if held then
    redis.call('hdel', queue .. ':lock_info', pool)
    if held > 0 and (tonumber(redis.call('decrby', queue .. ':lock', held)) or 0) < 0 then
      redis.call('set', queue .. ':lock', 0)
    end
  end
end
redis.call('srem', KEYS[1], pool)
redis.call('del', KEYS[2])
return moved
`)

// scriptRefireHook queues an event with a job's current status when its
// receiver's ack is behind that status and no event is waiting (events
// were lost or given up).
//
// KEYS: stats
// ARGV: change args (9)
var scriptRefireHook = redis.NewScript(1, luaRule+`
local n = #ARGV
local c = redis.call('hmget', KEYS[1], 'status', 'revision', 'ack', 'web_hook_url', 'id')
if not c[1] or not c[4] or c[4] == '' then return 0 end
if c[1] == 'Pending' or c[1] == 'Scheduled' then return 0 end
if redis.call('exists', ARGV[n-4] .. c[5]) == 1 then return 0 end
if c[3] then
  local ok, a = pcall(cjson.decode, c[3])
  if ok and type(a) == 'table' and tonumber(a['revision']) == tonumber(c[2]) and a['status'] == c[1] then return 0 end
end
emit(KEYS[1])
return 1
`)
