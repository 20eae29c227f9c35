//! The Lua scripts that make each cache operation one atomic step on the server.
//!
//! Every script takes the five keys of [`Keyspace::all`](super::keyspace::Keyspace::all) as
//! `KEYS[1..5]` (meta, values, index, guard, log) and, as `ARGV[1]` and `ARGV[2]`, a freshly
//! proposed incarnation id and the log's length bound. Operation arguments start at `ARGV[3]`.
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
/// by whole stream nodes, which keeps XADD O(1).
const PRELUDE: &str = r#"
local function incarnation()
  if redis.call('HSETNX', KEYS[1], 'inc', ARGV[1]) == 1 then
    redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
    return ARGV[1]
  end
  return redis.call('HGET', KEYS[1], 'inc')
end
local function log(inc, prefix)
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'p', prefix, 'i', inc)
  return seq
end
"#;

/// `ARGV[3]` key, `ARGV[4]` value. Returns the log sequence number of the put.
const PUT: &str = r#"
local inc = incarnation()
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
return log(inc, ARGV[3])
"#;

/// `ARGV[3]` prefix, `ARGV[4]` how many prefixes the guard remembers. Returns the new epoch.
///
/// The keys starting with `p` are exactly the index range `[p, p..0xFF)`: UTF-8 never contains
/// the byte 0xFF, so every `p..rest` sorts below `p..0xFF`, and any key in the range that does
/// not start with `p` would have to differ from `p` at some byte by being greater, which puts
/// it above `p..0xFF`. Range bounds are binary-safe: no escaping, no SCAN. `""` drops the two
/// keys whole. When the guard remembers too many prefixes, the oldest are forgotten and `floor`
/// records the newest epoch forgotten: a token older than it can no longer be checked.
const INVALIDATE: &str = r#"
local inc = incarnation()
local p = ARGV[3]
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('ZADD', KEYS[4], epoch, p)
local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[4])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[4], over)
  redis.call('HSET', KEYS[1], 'floor', popped[#popped])
end
if p == '' then
  redis.call('UNLINK', KEYS[2], KEYS[3])
else
  local lo, hi = '[' .. p, '(' .. p .. '\255'
  local doomed = redis.call('ZRANGEBYLEX', KEYS[3], lo, hi)
  for n = 1, #doomed, 1000 do
    redis.call('HDEL', KEYS[2], unpack(doomed, n, math.min(n + 999, #doomed)))
  end
  redis.call('ZREMRANGEBYLEX', KEYS[3], lo, hi)
end
log(inc, p)
return epoch
"#;

/// No operation arguments. Returns `{incarnation, epoch}`, both as strings.
const FILL_TOKEN: &str = r#"
local inc = incarnation()
return {inc, redis.call('HGET', KEYS[1], 'epoch') or '0'}
"#;

/// `ARGV[3]` key, `ARGV[4]` value, `ARGV[5]` token incarnation, `ARGV[6]` token epoch.
/// Returns 1 when stored, 0 when stale.
///
/// Stale when the incarnation changed, when the token predates the guard's memory (`floor`),
/// or when some prefix of the key (every byte prefix, `""` included, looked up with ZMSCORE)
/// was invalidated after the token. Cost O(len(key) · log G), no per-key state. Fills are not
/// logged: a fill only stores what no invalidation since its token has covered.
const FILL: &str = r#"
local m = redis.call('HMGET', KEYS[1], 'inc', 'epoch', 'floor')
if m[1] ~= ARGV[5] then return 0 end
local t = tonumber(ARGV[6])
if t < tonumber(m[3] or '0') then return 0 end
if tonumber(m[2] or '0') ~= t then
  local key, prefixes = ARGV[3], {}
  for n = 0, #key do prefixes[n + 1] = string.sub(key, 1, n) end
  for n = 1, #prefixes, 1000 do
    local scores = redis.call('ZMSCORE', KEYS[4], unpack(prefixes, n, math.min(n + 999, #prefixes)))
    for _, s in ipairs(scores) do
      if s and tonumber(s) > t then return 0 end
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[3])
return 1
"#;

fn script(flags: &str, body: &str) -> Script {
    Script::new(&format!("#!lua{flags}\n{PRELUDE}{body}"))
}

/// Adds data: refused whole when the server is out of memory.
pub(crate) static PUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| script("", PUT));
/// Adds data: refused whole when the server is out of memory.
pub(crate) static FILL_SCRIPT: LazyLock<Script> = LazyLock::new(|| script("", FILL));
/// Drops data: always allowed.
pub(crate) static INVALIDATE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=allow-oom", INVALIDATE));
/// Writes at most the incarnation id: allowed out of memory, so reads keep working.
pub(crate) static FILL_TOKEN_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| script(" flags=allow-oom", FILL_TOKEN));

/// Every script, for loading them all at connect (which also proves the server runs them).
pub(crate) fn all() -> [&'static Script; 4] {
    [
        &PUT_SCRIPT,
        &FILL_SCRIPT,
        &INVALIDATE_SCRIPT,
        &FILL_TOKEN_SCRIPT,
    ]
}
