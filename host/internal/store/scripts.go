package store

import "github.com/gomodule/redigo/redis"

// Every script that changes a job takes the same environment as its first
// envArgs ARGV (see Store.env) and answers {tag, values, events}: a tag
// saying what happened, the values the caller needs, and the events of
// every change it made, one array per event (see decodeEvents). Its own
// arguments follow the environment: arg(i) is ARGV[envArgs+i].
//
// A job's status changes in exactly one place, move: it applies the rule
// (can_move, job.CanMove in Lua), writes the status, revision and update
// time, sets the TTL of a final status, releases a unique job's claim with
// its final status (and renews it with any other), keeps the job's listing
// index, trims its parent's executions, queues the status hook event and
// records the event, and drops the lease of a job that leaves Running. A
// check-in goes through checkin, a new job through insert; the three share
// event and announce.
const envArgs = 15

// luaPrelude is the shared part of every script that changes a job.
const luaPrelude = `
local NOW_MS = tonumber(ARGV[1])
local NOW = math.floor(NOW_MS / 1000)
local STATS, EXECS, EXEC_CAP, IDX = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local HOOK_LIST, HOOKS_DUE, HOOKS_CHAN, HOOK_CAP = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local TTL = {Success = tonumber(ARGV[10]), Stopped = tonumber(ARGV[11]), Error = tonumber(ARGV[12])}
local CLAIM_TTL = tonumber(ARGV[13])
local LEASES, HOLDERS = ARGV[14], ARGV[15]
local ENV = 15
local function arg(i) return ARGV[ENV + i] end
-- nargs is the number of the script's own arguments.
local function nargs() return #ARGV - ENV end
local CODE = {Pending=0, Scheduled=1, Running=2, Stopped=3, Error=3, Success=3}
local EVENTS = {}

-- can_move is job.CanMove: TestMoveAgreesWithCanMove keeps them equal.
local function can_move(from, from_rev, to, to_rev)
  local tc = CODE[to]
  if tc == nil then return false end
  if to_rev > from_rev then return true end
  if to_rev < from_rev then return false end
  local fc = CODE[from]
  if fc == nil then fc = -1 end
  return tc > fc
end

-- index is the listing index of a job of kind in status (see Keys.Index).
local function index(kind, status, name)
  return IDX .. kind .. ':' .. status .. ':' .. name
end

-- read returns what the helpers need of the job at key, plus the values
-- of the extra fields in c.extra; nil when the job has no stats.
local function read(key, ...)
  local v = redis.call('hmget', key, 'status', 'revision', 'id', 'name', 'kind', 'web_hook_url',
    'upstream_job_id', 'retry_at', 'op_command', 'check_in_at', 'idx', 'unique_key', ...)
  if not v[1] then return nil end
  local extra = {}
  for i = 13, #v do extra[#extra + 1] = v[i] or '' end
  return {key = key, status = v[1], rev = tonumber(v[2]) or 0, id = v[3] or '', name = v[4] or '',
    kind = v[5] or '', hook = v[6] or '', up = v[7] or '', retry_at = tonumber(v[8]) or 0,
    op = v[9] or '', check_in_at = tonumber(v[10]) or 0, score = v[11] or '0', claim = v[12] or '',
    extra = extra}
end

-- event records a change; its last field says whether a status hook
-- event was queued for it (set by announce's caller).
local function event(c, from, from_rev, reason, checkin, retry_at)
  local ev = {c.id, c.name, c.kind, from, c.status, tostring(from_rev), tostring(c.rev),
    ARGV[1], reason, checkin or '', tostring(retry_at or 0), c.up, ''}
  EVENTS[#EVENTS + 1] = ev
  return ev
end

-- announce queues a status hook event when the job has a hook: a snapshot
-- of its stats (and the message of a check-in) appended to the job's event
-- list, and the job made due for delivery. A check-in is not queued when
-- cap events already wait (status changes always are).
local function announce(c, checkin)
  if c.hook == '' then return '' end
  local list = HOOK_LIST .. c.id
  if checkin and redis.call('llen', list) >= HOOK_CAP then return '' end
  local flat = redis.call('hgetall', c.key)
  local snap = {}
  for i = 1, #flat, 2 do snap[flat[i]] = flat[i + 1] end
  redis.call('rpush', list, cjson.encode({s = snap, c = checkin or ''}))
  redis.call('expire', list, 604800)
  redis.call('zadd', HOOKS_DUE, 'NX', ARGV[1], c.id)
  redis.call('publish', HOOKS_CHAN, c.id)
  return '1'
end

local function ended(status, retry_at)
  return status == 'Stopped' or status == 'Success' or (status == 'Error' and not retry_at)
end

-- The claim of a unique job (Keys.Unique; its key is the job's field
-- unique_key, c.claim) holds the ID of the one job with that name and
-- parameters that has not ended: taken at submission (an execution of a
-- unique policy takes it when it starts), renewed by every change and
-- check-in of its holder, released by the change to a final status, in
-- the same script. It expires CLAIM_TTL seconds after its holder's last
-- sign of life (or after a waiting job's run time), so that the claim of
-- a lost job cannot outlive it for long.

-- alive tells whether job id has stats and has not ended.
local function alive(id)
  local s = redis.call('hmget', STATS .. id, 'status', 'retry_at')
  return s[1] and not ended(s[1], s[2])
end

-- claim_ttl is the TTL of a claim taken or renewed now by a job that runs
-- at run_at (unix s; 0 or nil: now).
local function claim_ttl(run_at)
  local at = tonumber(run_at) or 0
  if at > NOW then return CLAIM_TTL + at - NOW end
  return CLAIM_TTL
end

-- rival is the job other than c that holds c's claim and has not ended;
-- nil when c may hold the claim (free, its own, or left by a job that
-- ended or whose stats are gone).
local function rival(c)
  local h = redis.call('get', c.claim)
  if h and h ~= c.id and alive(h) then return h end
  return nil
end

-- take makes c hold its claim; renew extends the claim when c holds it;
-- release drops the claim when c holds it.
local function take(c, run_at)
  redis.call('set', c.claim, c.id, 'EX', claim_ttl(run_at))
end

local function renew(c, run_at)
  if c.claim ~= '' and redis.call('get', c.claim) == c.id then
    redis.call('expire', c.claim, claim_ttl(run_at))
  end
end

local function release(c)
  if c.claim ~= '' and redis.call('get', c.claim) == c.id then redis.call('del', c.claim) end
end

-- trim keeps in an executions set the EXEC_CAP newest executions that
-- have ended, dropping older ended ones with their stats and index entry;
-- executions still to run are never dropped (their number is bounded by
-- the scheduler's horizon and by what runs).
local function trim(key)
  if EXEC_CAP <= 0 or redis.call('zcard', key) <= EXEC_CAP then return end
  local n = 0
  for _, m in ipairs(redis.call('zrevrange', key, 0, -1)) do
    local c = redis.call('hmget', STATS .. m, 'status', 'retry_at', 'kind', 'name')
    if not c[1] or ended(c[1], c[2]) then
      n = n + 1
      if n > EXEC_CAP then
        redis.call('zrem', key, m)
        if c[1] then
          redis.call('del', STATS .. m)
          redis.call('zrem', index(c[3] or '', c[1], c[4] or ''), m)
        end
      end
    end
  end
end

-- link adds job id to an executions set at score and trims the set.
local function link(key, score, id)
  redis.call('zadd', key, score, id)
  if TTL.Error > 0 then redis.call('expire', key, TTL.Error) end
  trim(key)
end

-- insert stores a new job: its stats hash (fields, a flat list), its
-- listing index entry, and the event.
local function insert(key, fields, reason)
  redis.call('hset', key, 'idx', ARGV[1], unpack(fields))
  local f = {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  local c = {key = key, status = f.status, rev = tonumber(f.revision) or 0, id = f.id, name = f.name,
    kind = f.kind, hook = f.web_hook_url or '', up = f.upstream_job_id or '', retry_at = 0, op = '',
    check_in_at = 0, score = ARGV[1], claim = f.unique_key or '', extra = {}}
  redis.call('zadd', index(c.kind, c.status, c.name), ARGV[1], c.id)
  event(c, '', 0, reason)
  return c
end

-- A running job has a lease (Keys.Leases, Keys.LeaseHolders): its holder
-- (the host that runs it) renews it; when it expires the job may be
-- recovered by any host. A start takes it, move drops it with the Running
-- status.

-- lease_holder is the holder of job id's lease while it has not expired,
-- else nil.
local function lease_holder(id)
  local exp = tonumber(redis.call('zscore', LEASES, id) or '0') or 0
  if exp <= NOW_MS then return nil end
  return redis.call('hget', HOLDERS, id) or nil
end

local function take_lease(id, holder, ms)
  redis.call('zadd', LEASES, NOW_MS + ms, id)
  redis.call('hset', HOLDERS, id, holder)
end

local function drop_lease(id)
  redis.call('zrem', LEASES, id)
  redis.call('hdel', HOLDERS, id)
end

-- move is the one status change of every script: job c (from read) moves
-- to status to in revision to_rev when can_move allows it, with the extra
-- fields set (a flat list) and del (a list) deleted. An Error with a
-- retry_at waits for its retry: it is not final, keeps no TTL, is not
-- trimmed and keeps its claim. Answers whether the job moved.
local function move(c, to, to_rev, reason, set, del, retry_at)
  -- One exception to the rule: a job waiting for its retry (Error, not
  -- final yet) may be Stopped in its own revision, so that a stop does
  -- not count as one more run.
  local stop_waiting = to == 'Stopped' and c.status == 'Error' and c.retry_at > 0 and to_rev == c.rev
  if not (stop_waiting or can_move(c.status, c.rev, to, to_rev)) then return false end
  local from, from_rev = c.status, c.rev
  local was_final = CODE[from] == 3 and not (from == 'Error' and c.retry_at > 0)
  local args = {'status', to, 'revision', to_rev, 'update_time', NOW}
  for _, v in ipairs(set or {}) do args[#args + 1] = v end
  redis.call('hset', c.key, unpack(args))
  if del and #del > 0 then redis.call('hdel', c.key, unpack(del)) end
  local final = CODE[to] == 3 and not (retry_at and retry_at > 0)
  if final and TTL[to] > 0 then
    redis.call('expire', c.key, TTL[to])
  elseif was_final and not final then
    redis.call('persist', c.key)
  end
  -- A unique job's claim goes with its final status, and lives on with
  -- every other change (a retry, a snooze, a new revision keep it).
  if final then
    release(c)
  elseif c.claim ~= '' then
    renew(c, to == 'Scheduled' and redis.call('hget', c.key, 'run_at') or nil)
  end
  if from ~= to then
    redis.call('zrem', index(c.kind, from, c.name), c.id)
    redis.call('zadd', index(c.kind, to, c.name), c.score, c.id)
  end
  -- A run's lease goes with its Running status (a new run takes its own).
  if from == 'Running' then drop_lease(c.id) end
  c.status, c.rev, c.retry_at = to, to_rev, retry_at or 0
  local ev = event(c, from, from_rev, reason, '', retry_at)
  -- An execution that ends keeps its parent's set of executions trimmed.
  if final and c.up ~= '' then trim(EXECS .. c.up) end
  -- A job queued again (Pending) is not announced, as on submission.
  if to ~= 'Pending' then ev[13] = announce(c) end
  return true
end

-- checkin records the progress message of running job c. check_in_at is
-- the second of the check-in, never ahead of the clock (Harbor core's
-- scheduler de-duplicates triggers by it), so several check-ins within a
-- second share it; check_in_seq numbers the check-ins of the run, which
-- keeps each one's hook event apart from the one before.
local function checkin(c, message)
  local at = math.max(NOW, c.check_in_at)
  local seq = redis.call('hincrby', c.key, 'check_in_seq', 1)
  redis.call('hset', c.key, 'check_in', message, 'check_in_at', at, 'update_time', NOW)
  local ev = event(c, c.status, c.rev, 'checked_in', message)
  ev[13] = announce(c, message)
  return at, seq
end

local function stop_reason(op)
  if op == 'cancel' then return 'cancelled' end
  return 'stopped'
end

-- push queues entry (list: LPUSH and the doorbell; zset: ZADD and the
-- timer) and adds name to the known jobs unless known is KEYS[1] (the
-- caller added it lately; see Store.known).
local function push(mode, key, entry, score, known, name, doorbell, timer)
  if mode == 'list' then
    redis.call('lpush', key, entry)
    redis.call('publish', doorbell, name)
  elseif mode == 'zset' then
    redis.call('zadd', key, score, entry)
    redis.call('publish', timer, score)
  end
  if mode ~= 'none' and known ~= KEYS[1] then redis.call('sadd', known, name) end
end

-- zrem_job removes the entry of job id from a gocraft/work sorted set,
-- looking only at scores in [lo, hi].
local function zrem_job(key, lo, hi, id)
  local found = 0
  for _, m in ipairs(redis.call('zrangebyscore', key, lo, hi)) do
    local ok, j = pcall(cjson.decode, m)
    -- A periodic execution's entry has the policy's ID and its fire time
    -- in the mark (store.PeriodicMark).
    local jid = ok and type(j) == 'table' and j['id']
    local args = jid and type(j['args']) == 'table' and j['args'] or {}
    if type(args['_job_kind_periodic_']) == 'string' then jid = jid .. '@' .. args['_job_kind_periodic_'] end
    if jid == id then
      redis.call('zrem', key, m)
      found = found + 1
    end
  end
  return found
end

local function answer(tag, values)
  return {tag, values or {}, EVENTS}
end
`

// scriptCreate stores a new job and makes it visible to workers in the
// same step, refusing a unique job whose claim another job holds (one
// that has not ended), and links a sub-job to its parent's executions.
//
// KEYS: stats, queue (list or zset), known_jobs, unique claim (or stats
//
//	again), parent's executions (or stats again)
//
// args: mode (list|zset), entry, run at, name, id, doorbell channel, timer
//
//	channel, unique (1|0), link (1|0), link score, field, value, ...
var scriptCreate = redis.NewScript(5, luaPrelude+`
if arg(8) == '1' then
  local holder = redis.call('get', KEYS[4])
  if holder and holder ~= arg(5) and alive(holder) then return answer('dup', {holder}) end
  redis.call('set', KEYS[4], arg(5), 'EX', claim_ttl(arg(3)))
end
insert(KEYS[1], {unpack(ARGV, ENV + 11)}, 'submitted')
push(arg(1), KEYS[2], arg(2), arg(3), KEYS[3], arg(4), arg(6), arg(7))
if arg(9) == '1' then link(KEYS[5], arg(10), arg(5)) end
return answer('ok')
`)

// scriptCreatePolicy stores a periodic policy (kind Periodic, status
// Scheduled) and makes it active.
//
// KEYS: stats, policies
// args: id, field, value, ...
var scriptCreatePolicy = redis.NewScript(2, luaPrelude+`
insert(KEYS[1], {unpack(ARGV, ENV + 2)}, 'submitted')
redis.call('sadd', KEYS[2], arg(1))
return answer('ok')
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
// args: entry, t, name, execution id, timer channel, field, value, ...
var scriptCreateExecution = redis.NewScript(5, luaPrelude+`
local p = redis.call('hmget', KEYS[5], 'status', 'last_fire')
if p[1] ~= 'Scheduled' then return answer('inactive') end
local t = tonumber(arg(2))
if t <= (tonumber(p[2]) or 0) then return answer('old') end
redis.call('hset', KEYS[5], 'last_fire', t)
if redis.call('exists', KEYS[1]) == 1 then return answer('exists') end
insert(KEYS[1], {unpack(ARGV, ENV + 6)}, 'fired')
push('zset', KEYS[2], arg(1), t, KEYS[3], arg(3), '', arg(5))
link(KEYS[4], t, arg(4))
return answer('ok')
`)

// scriptStart moves a job a worker took to Running, taking the run's
// lease for the holder: in its revision when it was Pending or Scheduled,
// in a new revision when it was Running (its host died: its lease
// expired) or waiting for a retry. A Running job whose lease another
// holder still holds runs there: it is left alone ('leased', the holder).
// A job asked to stop whose host died ends Stopped instead. A unique job takes (or keeps) its claim as it
// starts; when another job that has not ended holds it (the execution of
// a unique policy before this one still runs), the job is skipped: it
// ends Stopped in its revision, saying so in its check-in, and never runs.
//
// KEYS: stats
// args: lease holder, lease ms, queue key prefix
//
// It answers {revision, parameters, upstream_job_id, op_command,
// snoozes} (and, when skipped, the holder of the claim; when started, the
// number of entries left in the job's queue, 0 when they wait for the
// type's concurrency limit): what the run needs, not the whole hash (this
// is the hot path).
var scriptStart = redis.NewScript(1, luaPrelude+`
local c = read(KEYS[1], 'parameters', 'snoozes')
if not c then return answer('missing') end
local params, snoozes = c.extra[1], c.extra[2]
if c.status == 'Running' then
  local holder = lease_holder(c.id)
  if holder and holder ~= arg(1) then return answer('leased', {holder}) end
end
if c.status == 'Running' and c.op ~= '' then
  local op = c.op
  move(c, 'Stopped', c.rev, stop_reason(op), nil, {'retry_at'})
  return answer('stopped', {tostring(c.rev), params, c.up, op, snoozes})
end
local to_rev, reason = c.rev, 'started'
if c.status == 'Running' then
  to_rev, reason = math.max(NOW, c.rev + 1), 'recovered'
elseif c.status == 'Error' and c.retry_at > 0 then
  to_rev, reason = math.max(NOW, c.rev + 1), 'retried'
end
-- A run starts with no check-in (Harbor resets them for every run too).
local del = {'check_in', 'check_in_at', 'check_in_seq'}
if c.retry_at > 0 then del[#del + 1] = 'retry_at' end
if c.op ~= '' then del[#del + 1] = 'op_command' end
if c.claim ~= '' and can_move(c.status, c.rev, 'Running', to_rev) then
  local holder = rival(c)
  if holder then
    local msg = 'skipped: job ' .. holder .. ', unique with the same name and parameters, has not ended'
    if c.up ~= '' and string.sub(holder, 1, #c.up + 1) == c.up .. '@' then
      msg = 'skipped: the execution ' .. holder .. ' of this unique periodic policy has not ended'
    end
    move(c, 'Stopped', c.rev, 'skipped', {'check_in', msg, 'check_in_at', math.max(NOW, c.check_in_at)},
      {'retry_at', 'op_command', 'check_in_seq'})
    return answer('skipped', {tostring(c.rev), params, c.up, '', snoozes, holder})
  end
  take(c)
end
if not move(c, 'Running', to_rev, reason, nil, del) then return answer('refused', {c.status}) end
take_lease(c.id, arg(1), tonumber(arg(2)))
-- Entries that wait for the type's concurrency limit (gocraft/work's
-- :lock, which counts this job, against :max_concurrency, 0 for none)
-- wait for no worker: they are not a backlog.
local queue = arg(3) .. c.name
local waiting = redis.call('llen', queue)
if waiting > 0 then
  local limit = tonumber(redis.call('get', queue .. ':max_concurrency')) or 0
  if limit > 0 and (tonumber(redis.call('get', queue .. ':lock')) or 0) >= limit then waiting = 0 end
end
return answer('ok', {tostring(to_rev), params, c.up, '', snoozes, tostring(waiting)})
`)

// scriptRecoverLease recovers a running job whose lease expired (its
// holder stopped renewing it: the host died, paused, lost Redis, or no
// longer runs the job): it is queued again in a new revision (Pending,
// not announced, as at a shutdown), or, when it was asked to stop, ends
// Stopped. A lease renewed meanwhile is left alone ('held'); a lease of a
// job that no longer runs is dropped ('gone').
//
// KEYS: stats, queue, known_jobs
// args: id, entry, name, doorbell channel
var scriptRecoverLease = redis.NewScript(3, luaPrelude+`
local id = arg(1)
local exp = redis.call('zscore', LEASES, id)
if not exp then return answer('gone') end
if tonumber(exp) > NOW_MS then return answer('held') end
local c = read(KEYS[1])
if not c or c.status ~= 'Running' or arg(2) == '' then
  drop_lease(id)
  return answer('gone')
end
if c.op ~= '' then
  move(c, 'Stopped', c.rev, stop_reason(c.op), nil, {'retry_at'})
  return answer('stopped', {tostring(c.rev)})
end
move(c, 'Pending', math.max(NOW, c.rev + 1), 'lease_expired', nil, {'retry_at', 'op_command'})
push('list', KEYS[2], arg(2), 0, KEYS[3], arg(3), arg(4), '')
return answer('requeued', {tostring(c.rev)})
`)

// scriptMove changes a job's status by the rule, sets and deletes fields,
// and may queue the job again (a list entry) or put its retry in a sorted
// set. A running job asked to stop (op_command) that would not end (a
// retry wait, a snooze, a requeue) ends Stopped instead.
//
// KEYS: stats, queue (list or zset; stats again when none), known_jobs
//
//	(stats again when none)
//
// args: to, revision ("next" or a number), reason, retry at (0: none),
//
//	push mode (none|list|zset), entry, score, name, doorbell channel, timer
//	channel, number of fields to set n, n field/value pairs, fields to
//	delete...
var scriptMove = redis.NewScript(3, luaPrelude+`
local c = read(KEYS[1])
if not c then return answer('missing') end
local to = arg(1)
local to_rev = tonumber(arg(2))
if arg(2) == 'next' then to_rev = math.max(NOW, c.rev + 1) end
if c.status == to and to_rev == c.rev then return answer('same', {to, tostring(c.rev)}) end
local nset = tonumber(arg(11))
local set, del = {}, {}
for i = 12, 11 + 2 * nset do set[#set + 1] = arg(i) end
for i = 12 + 2 * nset, nargs() do del[#del + 1] = arg(i) end
local retry_at = tonumber(arg(4))
if retry_at == 0 then retry_at = nil end
-- A stop asked while the job ran wins over a run that ended without
-- seeing it: the run that would wait for a retry, snooze or be queued
-- again ends Stopped in its revision instead, queued nowhere.
if c.status == 'Running' and c.op ~= '' and (arg(2) == 'next' or to_rev == c.rev)
    and (to == 'Pending' or to == 'Scheduled' or (to == 'Error' and retry_at)) then
  move(c, 'Stopped', c.rev, stop_reason(c.op), nil, {'retry_at'})
  return answer('ok', {'Stopped', tostring(c.rev)})
end
if not move(c, to, to_rev, arg(3), set, del, retry_at) then return answer('refused', {c.status, tostring(c.rev)}) end
push(arg(5), KEYS[2], arg(6), arg(7), KEYS[3], arg(8), arg(9), arg(10))
return answer('ok', {to, tostring(to_rev)})
`)

// scriptCheckin records a running job's check-ins, in order, each with
// its event and status hook event; refused when the job no longer runs in
// the given revision.
//
// KEYS: stats
// args: revision, message, message, ...
var scriptCheckin = redis.NewScript(1, luaPrelude+`
local c = read(KEYS[1])
if not c then return answer('missing') end
if c.status ~= 'Running' or c.rev ~= tonumber(arg(1)) then return answer('refused', {c.status}) end
local at = 0
for i = 2, nargs() do
  at = checkin(c, arg(i))
  c.check_in_at = at
end
renew(c)
return answer('ok', {tostring(at)})
`)

// scriptStop stops or cancels a job. A queued job (pending, scheduled or
// waiting for a retry) leaves its queue and ends Stopped here; a running
// job is marked and signalled on the signals channel, and its runner ends
// it. A final job is left alone. (A unique job's claim goes with the
// Stopped status, in move.)
//
// KEYS: stats, queue, scheduled, retry
//
// args: op, pending entry, signals channel
var scriptStop = redis.NewScript(4, luaPrelude+`
local c = read(KEYS[1], 'run_at')
if not c then return answer('missing') end
local op = arg(1)
if c.status == 'Running' then
  if c.op == '' then redis.call('hset', KEYS[1], 'op_command', op) end
  redis.call('publish', arg(3), op .. ' ' .. c.id)
  return answer('signalled')
end
local to_rev = c.rev
if c.status == 'Pending' then
  redis.call('lrem', KEYS[2], 1, arg(2))
elseif c.status == 'Scheduled' then
  local at = tonumber(c.extra[1]) or 0
  zrem_job(KEYS[3], at, at, c.id)
elseif c.status == 'Error' and c.retry_at > 0 then
  zrem_job(KEYS[4], c.retry_at - 5, c.retry_at + 5, c.id)
else
  return answer('final', {c.status})
end
move(c, 'Stopped', to_rev, stop_reason(op), {'op_command', op}, {'retry_at'})
return answer('stopped', {tostring(c.rev)})
`)

// scriptRetry re-runs a job in Error now, in a new revision, with a fresh
// failure count; a job waiting for an automatic retry leaves the retry set.
// A unique job takes its claim again, and is refused ('dup', the holder)
// when another job that has not ended holds it.
//
// KEYS: stats, queue, known_jobs, retry
// args: entry, name, doorbell channel
var scriptRetry = redis.NewScript(4, luaPrelude+`
local c = read(KEYS[1])
if not c then return answer('missing') end
if c.status ~= 'Error' then return answer('refused', {c.status}) end
if c.claim ~= '' then
  local holder = rival(c)
  if holder then return answer('dup', {holder}) end
  take(c)
end
-- A job waiting for its automatic retry has an entry somewhere: in the
-- retry set (taken out here and replaced), or already back in its queue
-- (then it runs from there, and must not be queued twice).
local queued = c.retry_at > 0 and zrem_job(KEYS[4], c.retry_at - 5, c.retry_at + 5, c.id) == 0
move(c, 'Pending', math.max(NOW, c.rev + 1), 'retry_requested', nil, {'retry_at', 'op_command', 'snoozes'})
if not queued then push('list', KEYS[2], arg(1), 0, KEYS[3], arg(2), arg(3), '') end
return answer('ok', {tostring(c.rev)})
`)

// scriptStopPolicy unschedules a periodic policy and stops its executions
// that have not started: a scheduled one leaves the scheduled set, one
// waiting for a retry leaves the retry set (in its revision), a pending
// one is marked so that no worker runs it, and a running one is signalled
// as its own stop would (Harbor stops it too).
//
// KEYS: policy stats, policies, policy's executions, scheduled, retry
// args: op, policy id, signals channel
var scriptStopPolicy = redis.NewScript(5, luaPrelude+`
local p = read(KEYS[1])
if not p then return answer('missing') end
redis.call('srem', KEYS[2], arg(2))
if p.status ~= 'Scheduled' then return answer('final', {p.status}) end
local op = arg(1)
local reason = stop_reason(op)
move(p, 'Stopped', p.rev, reason, {'op_command', op})
local n = 0
for _, m in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do
  local c = read(STATS .. m, 'run_at')
  if c and c.status == 'Error' and c.retry_at > 0 then
    zrem_job(KEYS[5], c.retry_at - 5, c.retry_at + 5, m)
    move(c, 'Stopped', c.rev, reason, {'op_command', op}, {'retry_at'})
    n = n + 1
  elseif c and c.status == 'Scheduled' then
    local at = tonumber(c.extra[1]) or 0
    zrem_job(KEYS[4], at, at, m)
    move(c, 'Stopped', c.rev, reason, {'op_command', op})
    n = n + 1
  elseif c and c.status == 'Pending' then
    move(c, 'Stopped', c.rev, reason, {'op_command', op})
    n = n + 1
  elseif c and c.status == 'Running' then
    -- As a stop of the execution itself: marked and signalled, ended by
    -- its runner.
    if c.op == '' then redis.call('hset', c.key, 'op_command', op) end
    redis.call('publish', arg(3), op .. ' ' .. c.id)
    n = n + 1
  end
end
if TTL.Stopped > 0 then redis.call('expire', KEYS[3], TTL.Stopped) end
return answer('stopped', {tostring(n)})
`)

// scriptRefireHook queues an event with a job's current status when its
// receiver's ack is behind that status and no event is waiting (events
// were lost or given up).
//
// KEYS: stats
var scriptRefireHook = redis.NewScript(1, luaPrelude+`
local c = read(KEYS[1], 'ack')
if not c or c.hook == '' or c.status == 'Pending' or c.status == 'Scheduled' then return 0 end
if redis.call('exists', HOOK_LIST .. c.id) == 1 then return 0 end
local ack = c.extra[1]
if ack ~= '' then
  local ok, a = pcall(cjson.decode, ack)
  if ok and type(a) == 'table' and tonumber(a['revision']) == c.rev and a['status'] == c.status then return 0 end
end
announce(c)
return 1
`)

// Scripts that do not change a job's status take no environment.

// scriptMoveDue moves the entries of the scheduled and retry sets that
// are due into their queues, as gocraft/work's own requeuer does once a
// second, but at the due second, and rings the doorbell for each. The
// entry's bytes are queued as they are (no re-encoding). An entry of a job
// name not given is left for a host that serves it, and looked past: it
// counts neither toward the limit nor as the next entry. It answers how
// many it moved, how many malformed entries it dropped, and the score of
// the next entry to wait for (” when none): the first still due when the
// limit was reached, else the first not yet due.
//
// KEYS: scheduled, retry, the queue of each name
// ARGV: now, doorbell channel, limit, name, ...
var scriptMoveDue = redis.NewScript(-1, `
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[3])
local queues = {}
for i = 4, #ARGV do queues[ARGV[i]] = KEYS[i - 1] end
local moved, bad = 0, 0
local next_at = nil
local function earliest(at)
  if at and (next_at == nil or at < next_at) then next_at = at end
end
for s = 1, 2 do
  local set = KEYS[s]
  local n, skip, full = 0, 0, false
  -- Pages of due entries, past the ones of other names, until the limit.
  for _ = 1, 20 do
    local due = redis.call('zrangebyscore', set, '-inf', now, 'WITHSCORES', 'LIMIT', skip, limit)
    if #due == 0 then break end
    for i = 1, #due, 2 do
      local m = due[i]
      local ok, j = pcall(cjson.decode, m)
      if not ok or type(j) ~= 'table' or type(j['name']) ~= 'string' then
        if redis.call('zrem', set, m) == 1 then bad = bad + 1 end
      elseif queues[j['name']] then
        if n >= limit then
          full = true
          earliest(tonumber(due[i + 1]))
          break
        end
        if redis.call('zrem', set, m) == 1 then
          redis.call('lpush', queues[j['name']], m)
          redis.call('publish', ARGV[2], j['name'])
          moved, n = moved + 1, n + 1
        end
      else
        skip = skip + 1
      end
    end
    if full or #due < 2 * limit then break end
  end
  if not full then
    local first = redis.call('zrangebyscore', set, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    earliest(tonumber(first[2]))
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
var scriptClaimHook = redis.NewScript(2, `
local CODE = {Pending=0, Scheduled=1, Running=2, Stopped=3, Error=3, Success=3}
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
    -- Check-ins of one run: by their number when both have one, else by
    -- their second.
    local seq, aseq = tonumber(s['check_in_seq']), tonumber(ack['check_in_seq'])
    if seq and aseq then return aseq >= seq end
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
// ARGV: event, now ms, id, ack JSON, ack revision, ack status, ack
//
//	check_in_at, ack check_in_seq (0: none)
var scriptAckHook = redis.NewScript(4, `
local CODE = {Pending=0, Scheduled=1, Running=2, Stopped=3, Error=3, Success=3}
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
      local seq, aseq = tonumber(ARGV[8]) or 0, tonumber(a['check_in_seq']) or 0
      local later = at > aat or (at == aat and seq >= aseq)
      newer = rev > arev or (rev == arev and (code > acode or (code == acode and later)))
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

// scriptFailHook makes the job due again later and counts a failed
// delivery (when count is 1).
//
// KEYS: due, attempts
// ARGV: id, due at ms, count (1|0)
var scriptFailHook = redis.NewScript(2, `
if ARGV[3] == '1' then redis.call('hincrby', KEYS[2], ARGV[1], 1) end
redis.call('zadd', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 'ok'
`)

// scriptRenewLeases renews the leases a holder holds: a job's lease is
// renewed to the given expiry when the holder holds it and the job still
// runs in the given revision, whether or not it expired meanwhile (nobody
// recovered it). It answers the IDs of the jobs whose lease is lost.
//
// KEYS: leases, lease holders
// ARGV: holder, expiry (unix ms), stats key prefix, id, revision, ...
var scriptRenewLeases = redis.NewScript(2, `
local lost = {}
for i = 4, #ARGV - 1, 2 do
  local id, rev = ARGV[i], ARGV[i + 1]
  local s = redis.call('hmget', ARGV[3] .. id, 'status', 'revision')
  if redis.call('hget', KEYS[2], id) == ARGV[1] and s[1] == 'Running' and s[2] == rev then
    redis.call('zadd', KEYS[1], ARGV[2], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
`)

// scriptReapPool re-queues the jobs a dead worker pool had taken (its
// in-progress lists), gives back the concurrency slots it held, and
// forgets the pool.
//
// KEYS: worker pools set, the pool's heartbeat, then for each job name:
//
//	queue, the pool's in-progress list, lock, lock_info
//
// ARGV: pool id, doorbell channel, job name, ...
var scriptReapPool = redis.NewScript(-1, `
local pool = ARGV[1]
local moved = 0
for i = 3, #ARGV do
  local k = 3 + 4 * (i - 3)
  local queue, inprog, lock, info = KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  while redis.call('rpoplpush', inprog, queue) do
    moved = moved + 1
    redis.call('publish', ARGV[2], ARGV[i])
  end
  local held = tonumber(redis.call('hget', info, pool))
  if held then
    redis.call('hdel', info, pool)
    if held > 0 and (tonumber(redis.call('decrby', lock, held)) or 0) < 0 then
      redis.call('set', lock, 0)
    end
  end
end
redis.call('srem', KEYS[1], pool)
redis.call('del', KEYS[2])
return moved
`)

// scriptRequeueOrphan undoes gocraft/work's fetch of one entry.
//
// KEYS: in-progress list, queue, lock, lock_info
// ARGV: entry, pool id, doorbell channel, job name
var scriptRequeueOrphan = redis.NewScript(4, `
if redis.call('lrem', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('rpush', KEYS[2], ARGV[1])
local held = tonumber(redis.call('hget', KEYS[4], ARGV[2]))
if held and held > 0 then redis.call('hincrby', KEYS[4], ARGV[2], -1) end
if (tonumber(redis.call('get', KEYS[3])) or 0) > 0 then redis.call('decr', KEYS[3]) end
redis.call('publish', ARGV[3], ARGV[4])
return 1
`)
