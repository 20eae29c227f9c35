//! The Lua scripts that make each cache operation one atomic step on the server.
//!
//! Every script takes the nine keys of [`Keyspace::all`](super::keyspace::Keyspace::all) as
//! `KEYS[1..9]` (meta, values, index, guard, log, written, marks, cursors, order) and four
//! common arguments: `ARGV[1]` a freshly proposed incarnation id, `ARGV[2]` the log's length
//! bound, `ARGV[3]` the byte budget and `ARGV[4]` the expiry horizon (entries fetched before
//! it, in Unix ms, are expired; both `0` when unset). Operation arguments start at `ARGV[5]`.
//!
//! **The budget.** Each entry is charged its key and value bytes (meta `bytes`), and `order`
//! ranks entries by fetch time. Every write that adds data ends with `trim()`: it removes
//! expired entries, then evicts the oldest until the shard fits its budget, `TRIM_LIMIT`
//! removals in all; a namespace far over budget (a budget just lowered) shrinks over the next
//! writes. Gets stay read-only: they hide nothing by time on the server (the client
//! checks `fetched_at` after decoding) and never reorder.
//!
//! Every call does bounded work, so no call holds the server (which runs one command at a time)
//! for long: a prefix invalidation marks its prefix in one call (`INVALIDATE`: from then on no
//! entry under it written before the mark can be read or filled) and deletes the entries in
//! calls of at most `SWEEP_CHUNK` keys each (`SWEEP`). An entry written after the mark carries a
//! newer epoch (`written`) and survives the sweep.
//!
//! Why scripts: a put must update the values hash, the index and the log together (with HSET
//! then ZADD, an invalidation in between would miss the key), and the fill guard must compare
//! and store in one step. A script runs without anything interleaving.
//!
//! The shebang line makes Redis (7.0+) check memory *before* running a script: a script without
//! `allow-oom` is refused whole when the server is over `maxmemory`, never half-applied. Writes
//! that add data (put, fill) are refused that way; invalidations carry `allow-oom`, because
//! dropping data must always be possible.

use std::sync::LazyLock;

use redis::Script;

/// Shared helpers, pasted after each shebang line.
///
/// `incarnation()`: the namespace's incarnation id. When the meta hash is gone (first use,
/// FLUSHALL, a restart without persistence) the proposed id becomes the new incarnation and the
/// rest of the namespace is cleared, so "new incarnation" always means "empty namespace": tokens
/// and log positions from before can never be mistaken for current ones.
///
/// `log(inc, prefix)`: appends "drop `prefix` from your near tier" to the log, with an id one
/// above the last (`seq-0`), so a reader sees a gap as a jump in ids. MAXLEN `~` trims lazily,
/// by whole stream nodes, which keeps XADD O(1). Each entry also carries a link: `l`, an id of
/// its own (the call's fresh `ARGV[1]`, unique per call and each call logs once), and `b`, the
/// link of the entry before it (kept in meta as `link`). A reader checks that each entry's `b`
/// is the `l` it applied last: when history is rolled back (a replica promoted without the
/// last entries, a restore of an older snapshot) new entries reuse old sequence numbers, and
/// only the links tell them apart. `t` is the server's clock when the entry was written (`TIME`,
/// in Unix microseconds, as digits), from which readers measure how late they apply it; with
/// effects replication (Redis 7) a replica stores the value the master read.
const PRELUDE: &str = r#"
local function incarnation()
  if redis.call('HSETNX', KEYS[1], 'inc', ARGV[1]) == 1 then
    redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
    return ARGV[1]
  end
  return redis.call('HGET', KEYS[1], 'inc')
end
local function log(inc, prefix)
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  local before = redis.call('HGET', KEYS[1], 'link') or ''
  local now = redis.call('TIME')
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], seq .. '-0',
    'p', prefix, 'i', inc, 'b', before, 'l', ARGV[1], 't', now[1] .. string.format('%06d', now[2]))
  redis.call('HSET', KEYS[1], 'link', ARGV[1])
  return seq
end
local function store(key, value, fetched)
  local old = redis.call('HSTRLEN', KEYS[2], key)
  local added = #value - old
  if old == 0 then added = added + #key end
  redis.call('HSET', KEYS[2], key, value)
  redis.call('HSET', KEYS[6], key, redis.call('HGET', KEYS[1], 'epoch') or '0')
  redis.call('ZADD', KEYS[3], 0, key)
  redis.call('ZADD', KEYS[9], fetched, key)
  redis.call('HINCRBY', KEYS[1], 'bytes', added)
end
local function forget(keys)
  if #keys == 0 then return end
  local freed = 0
  for _, key in ipairs(keys) do
    local size = redis.call('HSTRLEN', KEYS[2], key)
    if size > 0 then freed = freed + #key + size end
  end
  redis.call('HDEL', KEYS[2], unpack(keys))
  redis.call('HDEL', KEYS[6], unpack(keys))
  redis.call('ZREM', KEYS[3], unpack(keys))
  redis.call('ZREM', KEYS[9], unpack(keys))
  redis.call('HINCRBY', KEYS[1], 'bytes', -freed)
end
local function trim()
  local budget, horizon, work = tonumber(ARGV[3]), tonumber(ARGV[4]), TRIM_LIMIT
  if horizon > 0 then
    local expired = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', '(' .. horizon, 'LIMIT', 0, work)
    forget(expired)
    work = work - #expired
    if #expired > 0 then redis.call('HINCRBY', KEYS[1], 'expired', #expired) end
  end
  if budget == 0 then return TRIM_LIMIT - work end
  local evicted = 0
  while work > 0 and tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0') > budget do
    local oldest = redis.call('ZRANGE', KEYS[9], 0, 0)
    if #oldest == 0 then break end
    forget(oldest)
    evicted, work = evicted + 1, work - 1
  end
  if evicted > 0 then redis.call('HINCRBY', KEYS[1], 'evicted', evicted) end
  return TRIM_LIMIT - work
end
local function prefixes_of(key)
  local prefixes = {}
  for n = 0, #key do prefixes[n + 1] = string.sub(key, 1, n) end
  return prefixes
end
local function any_score_above(zset, members, floor)
  for n = 1, #members, 1000 do
    local scores = redis.call('ZMSCORE', zset, unpack(members, n, math.min(n + 999, #members)))
    for _, s in ipairs(scores) do
      if s and tonumber(s) > floor then return true end
    end
  end
  return false
end
"#;

/// `ARGV[5]` key, `ARGV[6]` value, `ARGV[7]` fetch time (Unix ms). Returns the log sequence
/// number of the put.
const PUT: &str = r#"
local inc = incarnation()
store(ARGV[5], ARGV[6], ARGV[7])
local seq = log(inc, ARGV[5])
trim()
return seq
"#;

/// `ARGV[5]` key. Returns the value, or nil: also when a mark covers the key and the value was
/// written before it (the invalidation has not swept it yet). Read-only. Without marks, one
/// HGET and one ZCARD; with some, the key's byte prefixes looked up with ZMSCORE.
const GET: &str = r#"
local v = redis.call('HGET', KEYS[2], ARGV[5])
if not v or redis.call('ZCARD', KEYS[7]) == 0 then return v end
local written = tonumber(redis.call('HGET', KEYS[6], ARGV[5]) or '0')
if any_score_above(KEYS[7], prefixes_of(ARGV[5]), written) then return false end
return v
"#;

/// `ARGV[5]` prefix, `ARGV[6]` how many prefixes the guard remembers. Returns the new epoch.
///
/// Bounded work whatever the prefix covers: it bumps the epoch, records the prefix in the fill
/// guard, and marks it (`marks`: prefix → this epoch; its sweep starts over), so that from now
/// on no entry under it written before can be read (`GET`) or filled over it with an older
/// token (`FILL`). `SWEEP` deletes those entries afterwards. `""` needs no sweep: it drops the
/// data keys whole (UNLINK frees them off the main thread). When the guard remembers too many
/// prefixes, the oldest are forgotten and `floor` records the newest epoch forgotten: a token
/// older than it can no longer be checked.
const INVALIDATE: &str = r#"
local inc = incarnation()
local p = ARGV[5]
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('ZADD', KEYS[4], epoch, p)
local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[6])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[4], over)
  redis.call('HSET', KEYS[1], 'floor', popped[#popped])
end
if p == '' then
  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
  redis.call('HSET', KEYS[1], 'bytes', 0)
else
  redis.call('ZADD', KEYS[7], epoch, p)
  redis.call('HDEL', KEYS[8], p)
end
log(inc, p)
return epoch
"#;

/// `ARGV[5]` prefix, `ARGV[6]` the most keys to look at, `ARGV[7]` the epoch of the mark this
/// sweep serves: when the prefix has been marked again since (a newer invalidation, whose own
/// sweep starts over from the first key), this one is done. Returns 1 once the prefix's sweep is
/// done (its mark removed, or there was none), 0 while there is more.
///
/// The keys starting with `p` are exactly the index range `[p, p..0xFF)`: UTF-8 never contains
/// the byte 0xFF, so every `p..rest` sorts below `p..0xFF`, and any key in the range that does
/// not start with `p` would have to differ from `p` at some byte by being greater, which puts
/// it above `p..0xFF`. Range bounds are binary-safe: no escaping, no SCAN. Each call walks on
/// from the mark's cursor, deletes what was written before the mark, and keeps what was
/// written after it. Any client may run it, and several at once: each call is atomic and
/// moves the shared cursor, so a sweep a crashed client left is finished by the next.
const SWEEP: &str = r#"
local p, limit = ARGV[5], tonumber(ARGV[6])
local mark = redis.call('ZSCORE', KEYS[7], p)
if not mark or tonumber(mark) ~= tonumber(ARGV[7]) then return 1 end
mark = tonumber(mark)
local cursor = redis.call('HGET', KEYS[8], p)
local lo = cursor and ('(' .. cursor) or ('[' .. p)
local keys = redis.call('ZRANGEBYLEX', KEYS[3], lo, '(' .. p .. '\255', 'LIMIT', 0, limit)
if #keys > 0 then
  local written = redis.call('HMGET', KEYS[6], unpack(keys))
  local doomed = {}
  for n, key in ipairs(keys) do
    if tonumber(written[n] or '0') < mark then doomed[#doomed + 1] = key end
  end
  forget(doomed)
end
if #keys < limit then
  redis.call('ZREM', KEYS[7], p)
  redis.call('HDEL', KEYS[8], p)
  return 1
end
redis.call('HSET', KEYS[8], p, keys[#keys])
return 0
"#;

/// No operation arguments. Returns `{incarnation, epoch}`, both as strings.
const FILL_TOKEN: &str = r#"
local inc = incarnation()
return {inc, redis.call('HGET', KEYS[1], 'epoch') or '0'}
"#;

/// `ARGV[5]` key, `ARGV[6]` value, `ARGV[7]` fetch time (Unix ms), `ARGV[8]` token
/// incarnation, `ARGV[9]` token epoch. Returns 1 when stored, 0 when stale.
///
/// Stale when the incarnation changed, when the token predates the guard's memory (`floor`),
/// or when some prefix of the key (every byte prefix, `""` included, looked up with ZMSCORE)
/// was invalidated after the token. Cost O(len(key) · log G), no per-key state. Fills are not
/// logged: a fill only stores what no invalidation since its token has covered.
const FILL: &str = r#"
local m = redis.call('HMGET', KEYS[1], 'inc', 'epoch', 'floor')
if m[1] ~= ARGV[8] then return 0 end
local t = tonumber(ARGV[9])
if t < tonumber(m[3] or '0') then return 0 end
-- A token from beyond the epoch: issued before a rollback (a failover to a replica that had
-- not received the invalidations since); nothing it could be checked against remains.
if t > tonumber(m[2] or '0') then return 0 end
if tonumber(m[2] or '0') ~= t then
  if any_score_above(KEYS[4], prefixes_of(ARGV[5]), t) then return 0 end
end
store(ARGV[5], ARGV[6], ARGV[7])
trim()
return 1
"#;

/// Removes expired entries, then evicts over the budget, `TRIM_LIMIT` entries in all at most;
/// returns how many went (`TRIM_LIMIT`: there may be more). Run by a client whose get met an
/// expired entry, so that expired entries go even when nothing is written. No operation
/// arguments.
const TRIM: &str = r#"
return trim()
"#;

/// The most entries one `trim()` removes: bounded work per call, about 0.4 ms at most.
pub(crate) const TRIM_LIMIT: usize = 128;

fn script(flags: &str, body: &str) -> Script {
    Script::new(&format!(
        "#!lua{flags}\nlocal TRIM_LIMIT = {TRIM_LIMIT}\n{PRELUDE}{body}"
    ))
}

/// Adds data: refused whole when the server is out of memory.
pub(crate) static PUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script("", PUT));
/// Adds data: refused whole when the server is out of memory.
pub(crate) static FILL_SCRIPT: LazyLock<Script> = LazyLock::new(|| script("", FILL));
/// Drops data: always allowed.
pub(crate) static INVALIDATE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=allow-oom", INVALIDATE));
/// Drops data: always allowed.
pub(crate) static SWEEP_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=allow-oom", SWEEP));
/// Reads only: allowed out of memory (and on replicas).
pub(crate) static GET_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=no-writes,allow-oom", GET));

/// The most index keys one `SWEEP` call looks at: about 0.3 ms of server time (3.3 µs a key
/// measured on one server; twice that on a master whose replica shares its cores), so another
/// client waits at most that long behind a sweep (`docs/redis-bench.md`).
pub(crate) const SWEEP_CHUNK: usize = 100;
/// Drops data: always allowed.
pub(crate) static TRIM_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=allow-oom", TRIM));
/// Writes at most the incarnation id: allowed out of memory, so reads keep working.
pub(crate) static FILL_TOKEN_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=allow-oom", FILL_TOKEN));

/// Every script, for loading them all at connect (which also proves the server runs them).
pub(crate) fn all() -> [&'static Script; 7] {
    [
        &PUT_SCRIPT,
        &GET_SCRIPT,
        &FILL_SCRIPT,
        &INVALIDATE_SCRIPT,
        &SWEEP_SCRIPT,
        &FILL_TOKEN_SCRIPT,
        &TRIM_SCRIPT,
    ]
}
