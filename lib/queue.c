/* queue.c - the Redis layout of a queue and the scripts of its protocol.
 *
 * A queue Q is one Redis stream, rc:{Q}:tasks, read through one consumer
 * group "w".  Streams were chosen over lists because the consumer group does
 * in one atomic command what a reliable list queue needs three for: XREADGROUP
 * hands an entry to one worker *and* records it in the pending-entries list
 * (PEL) with its owner, delivery time and delivery count, so there is no
 * moment when a task is in no list.  The PEL's idle time is the lease: a live
 * worker renews it (XCLAIM ... JUSTID by its heartbeat thread), and any worker
 * takes over entries idle past the lease (TAKEOVER: XPENDING ... IDLE, then
 * XCLAIM, which counts the delivery).  A worker holding a task never needs a
 * key of its own.  The master adds tasks in MULTI/EXEC blocks of up to 256:
 * Redis serves blocked readers once per command, so a block added as one
 * transaction wakes a waiting worker with many entries to take in a batch,
 * where plain pipelined XADDs would hand each waiting worker one.
 *
 * Per job J (16 hex digits): rc:{Q}:job:J holds the authenticated job
 * descriptor (kernel, task count, seed, broadcast blob) - workers fetch it
 * once per job and cache it; rc:{Q}:job:J:res is a stream of results (an
 * entry holds one or more fields "e", one result envelope each), read
 * by the master from a position it remembers, so a restarted master can read
 * it again from the start and nothing is lost if a reply is lost on the way;
 * the master creates it, empty, when it submits, and it exists exactly as
 * long as the job (workers add with NOMKSTREAM, so a late result recreates
 * nothing); rc:{Q}:job:J:why holds, per task, why its last attempt failed.
 * All three expire with the job's retention time, refreshed by the master
 * while it waits, so an abandoned job does not hold memory forever.  Every
 * key carries the hash tag {Q}, so a Redis Cluster puts a whole queue on one
 * shard and the scripts and transactions below may touch several keys.  Live
 * workers are listed in rc:{Q}:workers (sorted set, consumer -> last
 * heartbeat) with details in the expiring key rc:{Q}:worker:<consumer>;
 * rc:{Q}:nolapsed, when present, says a scan found no lapsed lease less than
 * a period ago.
 *
 * A delivery of small results is one script, DELIVER_SMALL, which adds
 * them to their result stream as one entry of one field per result and
 * acks what it added.  A larger delivery is one MULTI: an XADD ...
 * NOMKSTREAM of each result to its job's result stream, then DELIVER,
 * which acks and deletes each entry whose result stream exists - the XADD
 * found it, in the same transaction.  For an entry whose job's stream is
 * gone DELIVER returns 0 and touches nothing,
 * and the worker decides (an authenticated end marker: drop it; none: hand
 * the task back, its master may restore its keys), so a late result leaves
 * no orphan key and no result is thrown away on the word of whoever deleted
 * the stream.  Payloads stay out of Lua: every byte passed to a script is
 * copied twice more inside Redis.  RENEW extends the lease only of entries
 * the caller still owns, so a worker that stalled past its lease does not
 * steal its task back from the worker now running it.  TAKEOVER claims one
 * lapsed entry and returns its attempt number.  HANDBACK makes an entry the
 * caller owns claimable by anyone at once (IDLE past any lease) or after one
 * more lease (IDLE 0), and can lower its delivery count so a hand-back that
 * was no attempt is not counted.
 */
#include "internal.h"

#include <string.h>
#include <time.h>

/* How far (in the milliseconds of stream ids, i.e. of submission) acked
   entries may lie above the oldest pending one and still be left for a
   later trim instead of deleted one by one.  It bounds what a straggler
   holding the oldest entry keeps in Redis: the entries submitted in this
   span after its own, all finished. */
#define RC_TRIM_SPAN_MS "250"

/* Trimming, shared by the delivery scripts and TRIM.  Everything below the
   oldest pending entry is done - XREADGROUP hands entries out in id order,
   so all of them up to the group's last-delivered id were delivered, and
   those no longer pending were acked - so XTRIM MINID to it deletes
   nothing anyone needs; with nothing pending, everything up to and
   including the last-delivered id is done.  trim() returns the floor it
   trimmed to (nil: nothing pending).  Ids compare exactly as decimal
   strings (Lua's numbers are doubles): by the width of the milliseconds,
   then as strings - plain finds and one compare, no pattern per id. */
#define TRIM_FUNCTIONS                                                                 \
    "local function below(a, b)\n"                                                     \
    "  local pa, pb = string.find(a, '-', 1, true), string.find(b, '-', 1, true)\n"    \
    "  if not (pa and pb) then return false end\n"                                     \
    "  if pa ~= pb then return pa < pb end\n"                                          \
    "  if #a == #b then return a < b end\n"                                            \
    "  local ma, mb = string.sub(a, 1, pa), string.sub(b, 1, pb)\n"                    \
    "  if ma ~= mb then return ma < mb end\n"                                          \
    "  return #a < #b\n"                                                               \
    "end\n"                                                                            \
    "local function ms(id)\n"                                                          \
    "  local d = string.find(id, '-', 1, true)\n"                                      \
    "  return tonumber(string.sub(id, 1, (d or 1) - 1)) or 0\n"                        \
    "end\n"                                                                            \
    "local function trim(stream, group)\n"                                             \
    "  local p = redis.call('XPENDING', stream, group, '-', '+', 1)\n"                 \
    "  if p[1] then\n"                                                                 \
    "    if string.match(p[1][1], '^%d+-%d+$') then\n"                                 \
    "      redis.call('XTRIM', stream, 'MINID', p[1][1])\n"                            \
    "    end\n"                                                                        \
    "    return p[1][1]\n"                                                             \
    "  end\n"                                                                          \
    "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do\n"                 \
    "    local name, last\n"                                                           \
    "    for i = 1, #g - 1, 2 do\n"                                                    \
    "      if g[i] == 'name' then name = g[i + 1]\n"                                   \
    "      elseif g[i] == 'last-delivered-id' then last = g[i + 1] end\n"              \
    "    end\n"                                                                        \
    "    if name == group and last and string.match(last, '^%d+-%d+$') then\n"         \
    "      redis.call('XTRIM', stream, 'MINID', last)\n"                               \
    "      redis.call('XDEL', stream, last)\n"                                         \
    "    end\n"                                                                        \
    "  end\n"                                                                          \
    "  return nil\n"                                                                   \
    "end\n"

/* The end both delivery scripts share: ack what went in, trim, and return
   the verdicts in `out`.  Deleting is trimming: XDEL seeks each id from the
   start of its listpack node - a sixth of Redis' time on small tasks, and
   at 256 workers, where most batches finish above the oldest pending entry,
   0.6-1.0 us of 4-5 per task - while XTRIM walks the head of the stream
   once.  So acked entries above the floor are left for the trim of a later
   delivery (or of the master at its job's end, TRIM), unless the floor is
   more than RC_TRIM_SPAN_MS older than the newest of them: a straggler
   holding the floor then does not keep everything after it.  Readers of
   the stream tell such entries apart by the group's last-delivered id
   (delivered, not pending: done).  When the caller says the ids ascend
   (`sorted`), the newest is the last and those at or above the floor are a
   suffix, found by bisection.  A delivery of fewer than four entries (one
   task per round trip) deletes them with XDEL alone: two more calls would
   cost it more than the seeks they save. */
#define ACK_AND_RETURN                                                                 \
    TRIM_FUNCTIONS                                                                     \
    "if #acks > 0 then\n"                                                              \
    "  redis.call('XACK', KEYS[1], ARGV[1], unpack(acks))\n"                           \
    "end\n"                                                                            \
    "if #acks > 0 and #acks < 4 then\n"                                                \
    "  redis.call('XDEL', KEYS[1], unpack(acks))\n"                                    \
    "elseif #acks > 0 then\n"                                                          \
    "  local floor = trim(KEYS[1], ARGV[1])\n"                                         \
    "  if floor then\n"                                                                \
    "    local top = acks[#acks]\n"                                                    \
    "    if not sorted then\n"                                                         \
    "      for _, id in ipairs(acks) do if below(top, id) then top = id end end\n"     \
    "    end\n"                                                                        \
    "    if ms(top) - ms(floor) > " RC_TRIM_SPAN_MS " then\n"                          \
    "      if sorted then\n"                                                           \
    "        local lo, hi = 1, #acks + 1\n"                                            \
    "        while lo < hi do\n"                                                       \
    "          local mid = math.floor((lo + hi) / 2)\n"                                \
    "          if below(acks[mid], floor) then lo = mid + 1 else hi = mid end\n"       \
    "        end\n"                                                                    \
    "        if lo <= #acks then redis.call('XDEL', KEYS[1], unpack(acks, lo)) end\n"  \
    "      else\n"                                                                     \
    "        local rest = {}\n"                                                        \
    "        for _, id in ipairs(acks) do\n"                                           \
    "          if not below(id, floor) then rest[#rest + 1] = id end\n"                \
    "        end\n"                                                                    \
    "        if #rest > 0 then redis.call('XDEL', KEYS[1], unpack(rest)) end\n"        \
    "      end\n"                                                                      \
    "    end\n"                                                                        \
    "  end\n"                                                                          \
    "end\n"                                                                            \
    "return out\n"

static const char *const scripts[RC_SCRIPT_COUNT_] = {
    /* The second half of a delivery, queued in the same MULTI after the
       results' XADD ... NOMKSTREAM (payloads never enter Lua: every byte
       handed to a script is copied twice more).  KEYS stream, then one
       result stream per entry; ARGV group, then (id, 'r' result | 'a'
       plain ack) per entry.  An entry with a result is acked only if its
       job's result stream exists - the XADD before it found it, in the same
       transaction - else 0 and the entry is left alone. */
    [RC_SCRIPT_DELIVER] =
        "local out, acks, live, sorted = {}, {}, {}, false\n"
        "for k = 1, #KEYS - 1 do\n"
        "  local res, id, mode = KEYS[k + 1], ARGV[2 * k], ARGV[2 * k + 1]\n"
        "  local ok = 1\n"
        "  if mode == 'r' then\n"
        "    if live[res] == nil then live[res] = redis.call('TYPE', res).ok == 'stream' end\n"
        "    if not live[res] then ok = 0 end\n"
        "  end\n"
        "  if ok == 1 then acks[#acks + 1] = id end\n"
        "  out[k] = ok\n"
        "end\n"
        ACK_AND_RETURN,
    /* DELIVER and the XADDs in one script, for small results: a MULTI costs
       three more commands, and below a few KiB the copies into Lua cost
       less than those.  The results bound for one result stream go in as
       one entry, each envelope its own field "e" (each still MAC'd alone):
       Redis' cost is per entry - 33 one-field XADDs take 6x the command
       time of one 33-field XADD, and the master's XREAD of 33 entries 2.6x
       that of one - while a reader walks the fields just the same.  The
       entries of a result stream are acked only if the XADD ... NOMKSTREAM
       that carried their results put them in (nil: no stream; an error: not
       a stream, or out of memory).  The worker lays the arguments out so
       that each result is touched once, by unpack, and returns one verdict
       per result stream, not per entry: the per-entry tables this script
       used to build were two thirds of its time on a batch of 64.  KEYS the
       task stream, then the m result streams; ARGV group, sorted ('1': the
       ids ascend), m, the m group sizes, the number of plain acks, the ids
       (group by group, plain acks last), then 'e' and an envelope per
       result, in the same order.  One result and nothing else (one task
       per round trip, every task of 2 ms or more) takes a path of its own,
       the same calls without the tables, counts and trim functions: 1 us
       of the 6 the call cost Redis here (INFO commandstats, 20000 calls). */
    [RC_SCRIPT_DELIVER_SMALL] =
        "if ARGV[3] == '1' and ARGV[4] == '1' and ARGV[5] == '0' then\n"
        "  local added = redis.pcall('XADD', KEYS[2], 'NOMKSTREAM', '*', ARGV[7], ARGV[8])\n"
        "  if type(added) ~= 'string' then return {0} end\n"
        "  redis.call('XACK', KEYS[1], ARGV[1], ARGV[6])\n"
        "  redis.call('XDEL', KEYS[1], ARGV[6])\n"
        "  return {1}\n"
        "end\n"
        "local m = tonumber(ARGV[3])\n"
        "local na = tonumber(ARGV[4 + m])\n"
        "local ids0, n, out, all = 4 + m, na, {}, true\n"
        "for j = 1, m do n = n + tonumber(ARGV[3 + j]) end\n"
        "local f = ids0 + n + 1\n"
        "for j = 1, m do\n"
        "  local c = tonumber(ARGV[3 + j])\n"
        "  local added = redis.pcall('XADD', KEYS[1 + j], 'NOMKSTREAM', '*', unpack(ARGV, f, f + 2 * c - 1))\n"
        "  out[j] = type(added) == 'string' and 1 or 0\n"
        "  if out[j] == 0 then all = false end\n"
        "  f = f + 2 * c\n"
        "end\n"
        "local acks\n"
        "if all then acks = {unpack(ARGV, ids0 + 1, ids0 + n)} else\n"
        "  acks = {}\n"
        "  local at = ids0 + 1\n"
        "  for j = 1, m do\n"
        "    local c = tonumber(ARGV[3 + j])\n"
        "    if out[j] == 1 then for k = at, at + c - 1 do acks[#acks + 1] = ARGV[k] end end\n"
        "    at = at + c\n"
        "  end\n"
        "  for k = at, ids0 + n do acks[#acks + 1] = ARGV[k] end\n"
        "end\n"
        "local sorted = ARGV[2] == '1'\n"
        ACK_AND_RETURN,
    /* returns {renewed, held by another consumer} */
    [RC_SCRIPT_RENEW] =
        "local n, stolen = 0, 0\n"
        "for i = 3, #ARGV do\n"
        "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)\n"
        "  if p[1] and p[1][2] == ARGV[2] then\n"
        "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')\n"
        "    n = n + 1\n"
        "  elseif p[1] then\n"
        "    stolen = stolen + 1\n"
        "  end\n"
        "end\n"
        "return {n, stolen}\n",
    /* KEYS stream, nolapsed; ARGV group consumer min-idle period.  The first
       entry idle past the lease, claimed (XCLAIM counts the delivery), with
       its attempt number; or nothing.  XPENDING ... IDLE walks the pending
       list inside Redis, so one call finds a lapsed entry wherever it is;
       and a scan that finds none leaves `nolapsed` behind for one period,
       so the whole pool scans the list once a period, not every worker
       (which grew with workers x pending entries).  A `nolapsed` that would
       outlive a period was not written by us: it is ignored. */
    [RC_SCRIPT_TAKEOVER] =
        "local t = redis.call('PTTL', KEYS[2])\n"
        "if t > 0 and t <= tonumber(ARGV[4]) then return {false, 0} end\n"
        "local p = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', 1)\n"
        "if not p[1] then\n"
        "  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])\n"
        "  return {false, 0}\n"
        "end\n"
        "local e = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1][1])\n"
        "if e[1] then return {e[1], p[1][4] + 1} end\n"
        "return {false, 0}\n",
    /* KEYS stream meta why nolapsed; ARGV group consumer id rank (unused) idle free.
       Failure reasons are MAC'd attempt records the worker writes itself.
       free = 'free': this hand-back was not an attempt (a stop request, a
       missing descriptor), so the delivery count is lowered by one and the
       next take-over, which raises it, leaves it where it was.  An entry
       claimable at once clears `nolapsed`, so the next scan finds it now,
       not a period later */
    [RC_SCRIPT_HANDBACK] =
        "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
        "if not (p[1] and p[1][2] == ARGV[2]) then return 0 end\n"
        "local count = p[1][4]\n"
        "if ARGV[7] == 'free' and count > 0 then count = count - 1 end\n"
        "redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[6], 'RETRYCOUNT', count, 'JUSTID')\n"
        "if ARGV[6] ~= '0' then redis.call('DEL', KEYS[4]) end\n"
        "return 1\n",
    /* KEYS stream; ARGV group.  What a master runs when its job ends: the
       last deliveries of a job are often small (no trim) and leave acked
       entries above an older floor behind.  An empty stream (a small job's
       deliveries deleted their entries) costs one XLEN. */
    [RC_SCRIPT_TRIM] =
        TRIM_FUNCTIONS
        "if redis.call('XLEN', KEYS[1]) > 0 then trim(KEYS[1], ARGV[1]) end\n"
        "return 1\n",
};

rc_status rc_queue_name_check(const char *q, char *why, size_t whylen)
{
    size_t n = q ? strlen(q) : 0;
    if (n == 0 || n > 200) {
        snprintf(why, whylen, "queue name must be 1 to 200 characters");
        return RC_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = q[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':')) {
            snprintf(why, whylen, "queue name '%s' has character '%c': use letters, digits, _ - . :", q, c);
            return RC_EINVAL;
        }
    }
    return RC_OK;
}

void rc_keys_for_queue(const char *q, rc_keynames *kn)
{
    int n = snprintf(kn->tasks, sizeof kn->tasks, "rc:{%s}:tasks", q);
    kn->tasks_len = n > 0 ? (size_t)n : 0;
}

void rc_hex64(uint64_t v, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 15];
        v >>= 4;
    }
    out[16] = '\0';
}

/* digits [s, e) into *v; 0, or -1 if empty, not all digits, or over 2^64 - 1 */
static int parse_u64(const char *s, const char *e, uint64_t *v)
{
    if (s == e || e - s > 20)
        return -1;
    uint64_t x = 0;
    for (; s < e; s++) {
        unsigned d = (unsigned)(unsigned char)*s - '0';
        if (d > 9)
            return -1;
        if (x > UINT64_MAX / 10 || (x == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return -1; /* only a 20th digit can get here */
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int rc_stream_id_parse(const char *s, size_t n, uint64_t *ms, uint64_t *seq)
{
    const char *dash = s ? memchr(s, '-', n) : NULL;
    uint64_t a, b;
    if (!dash || parse_u64(s, dash, &a) != 0 || parse_u64(dash + 1, s + n, &b) != 0)
        return -1;
    *ms = a;
    *seq = b;
    return 0;
}

void rc_job_keys(const char *q, uint64_t job, char *meta, size_t metalen, char *res, size_t reslen)
{
    char hex[17];
    rc_hex64(job, hex);
    if (meta) snprintf(meta, metalen, "rc:{%s}:job:%s", q, hex);
    if (res) snprintf(res, reslen, "rc:{%s}:job:%s:res", q, hex);
}

static void tombstone_key(const char *queue, uint64_t job, char *key, size_t n)
{
    if (job) {
        char meta[300];
        rc_job_keys(queue, job, meta, sizeof meta, NULL, 0);
        snprintf(key, n, "%s:end", meta);
    } else {
        snprintf(key, n, "rc:{%s}:removed", queue);
    }
}

long long rc_wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

rc_status rc_tombstone_append(rc_conn *c, const rc_keys *k, const char *queue, uint64_t job, const char *what,
                              long long ttl_ms)
{
    char key[340], px[32];
    unsigned char buf[RC_HDR_BYTES + RC_MAC_BYTES + 64];
    size_t wl = strlen(what);
    if (wl > 64)
        return RC_EINVAL;
    rc_env e = {.kind = RC_KIND_CONTROL, .job = job, .aux = (uint64_t)rc_wall_ms(), .payload = what, .payload_len = wl};
    size_t n = rc_wire_size_env(&e);
    rc_status st = rc_wire_encode(&e, k, queue, buf, n);
    if (st != RC_OK)
        return st;
    tombstone_key(queue, job, key, sizeof key);
    snprintf(px, sizeof px, "%lld", ttl_ms);
    const char *av[] = {"SET", key, (const char *)buf, "PX", px};
    size_t al[] = {3, strlen(key), n, 2, strlen(px)};
    return rc_conn_append(c, 5, av, al);
}

rc_status rc_tombstone_write(rc_conn *c, const rc_keys *k, const char *queue, uint64_t job, const char *what,
                             long long ttl_ms)
{
    rc_status st = rc_tombstone_append(c, k, queue, job, what, ttl_ms);
    if (st != RC_OK)
        return st;
    redisReply *r = NULL;
    st = rc_conn_get(c, &r);
    if (r) freeReplyObject(r);
    return st;
}

int rc_tombstone_check(rc_conn *c, const rc_keys *k, const char *queue, uint64_t job, long long not_before_ms,
                       char *what, size_t n)
{
    char key[340], why[200];
    tombstone_key(queue, job, key, sizeof key);
    redisReply *r = NULL;
    if (rc_conn_cmdf(c, &r, "GET %s", key) != RC_OK) {
        if (r) freeReplyObject(r);
        return -1;
    }
    int ok = 0;
    rc_env e;
    if (r->type == REDIS_REPLY_STRING &&
        rc_wire_decode_max((unsigned char *)r->str, r->len, k, queue, 64, &e, why, sizeof why) == RC_OK &&
        e.kind == RC_KIND_CONTROL && e.job == job) {
        /* a queue removal is a command, not a state: honour only one made
           after the caller started (a worker) or submitted (a master), so
           an old marker replayed later - even an authentic one - cannot stop
           a fleet started since (hosts need synchronised clocks; a skewed
           purge errs on the safe side: the worker serves on).  A marker
           of the very millisecond we started counts: a purge racing a
           worker's start is likelier than a replay of that purge, and a
           worker that ignored it would recreate the queue and serve an
           empty queue for ever */
        ok = job != 0 || (long long)e.aux >= not_before_ms;
        if (ok && what)
            snprintf(what, n, "%.*s", (int)e.payload_len, (const char *)e.payload);
        else if (what) /* why not, for the caller's log */
            snprintf(what, n, "a marker made %lld ms before we started, ignored as a possible replay",
                     not_before_ms - (long long)e.aux);
    } else if (what) {
        snprintf(what, n, "%s", r->type == REDIS_REPLY_NIL ? "no marker" : "a marker that does not verify");
    }
    freeReplyObject(r);
    return ok;
}

rc_status rc_queue_ensure_group(rc_conn *c, const rc_keynames *kn)
{
    redisReply *r = NULL;
    rc_status st = rc_conn_cmdf(c, &r, "XGROUP CREATE %s %s 0 MKSTREAM", kn->tasks, RC_GROUP);
    if (st == RC_EREDIS && r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) == 0)
        st = RC_OK;
    if (r) freeReplyObject(r);
    return st;
}

static rc_status load_script(rc_conn *c, int which)
{
    redisReply *r = NULL;
    rc_status st = rc_conn_cmdf(c, &r, "SCRIPT LOAD %s", scripts[which]);
    if (st == RC_OK) {
        if (r->type == REDIS_REPLY_STRING && r->len == 40) {
            memcpy(c->sha[which], r->str, 40);
            c->sha[which][40] = '\0';
        } else {
            snprintf(c->err, sizeof c->err, "unexpected reply to SCRIPT LOAD");
            st = RC_EPROTO;
        }
    }
    if (r) freeReplyObject(r);
    return st;
}

const char *rc_script_sha(rc_conn *c, int which, rc_status *st)
{
    *st = RC_OK;
    if (!c->sha[which][0] && (*st = load_script(c, which)) != RC_OK)
        return NULL;
    return c->sha[which];
}

rc_status rc_script(rc_conn *c, int which, redisReply **reply, int nkeys, int nargs,
                    const char **argv, const size_t *lens)
{
    /* argv holds nkeys keys then nargs args; we prepend EVALSHA sha nkeys.
       The largest call is a DELIVER_SMALL of a full batch whose every task
       belongs to another job: 8 + 5 per entry. */
    enum { MAXARGS = 8 + 5 * RC_BATCH_MAX };
    const char *av[MAXARGS];
    size_t al[MAXARGS];
    char nk[16];
    if (nkeys + nargs + 3 > MAXARGS) {
        snprintf(c->err, sizeof c->err, "too many script arguments");
        return RC_EINVAL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        *reply = NULL;
        if (!c->sha[which][0]) {
            rc_status st = load_script(c, which);
            if (st != RC_OK)
                return st;
        }
        snprintf(nk, sizeof nk, "%d", nkeys);
        av[0] = "EVALSHA"; al[0] = 7;
        av[1] = c->sha[which]; al[1] = 40;
        av[2] = nk; al[2] = strlen(nk);
        for (int i = 0; i < nkeys + nargs; i++) {
            av[3 + i] = argv[i];
            al[3 + i] = lens ? lens[i] : strlen(argv[i]);
        }
        rc_status st = rc_conn_cmd(c, reply, 3 + nkeys + nargs, av, al);
        if (st == RC_EREDIS && *reply && (*reply)->type == REDIS_REPLY_ERROR &&
            strncmp((*reply)->str, "NOSCRIPT", 8) == 0) {
            /* Redis restarted or flushed its script cache: load and retry */
            freeReplyObject(*reply);
            *reply = NULL;
            c->sha[which][0] = '\0';
            continue;
        }
        if (st == RC_EREDIS && !*reply)
            c->sha[which][0] = '\0'; /* reconnection may reach a new server */
        return st;
    }
    return RC_EREDIS;
}

/* The stream goes first: its workers see NOGROUP (or UNBLOCKED) and exit;
 * then every other key of the queue. */
rc_status rc_queue_remove(rc_ctx *ctx)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    rc_status st;
    /* workers act only on an authenticated removal, so it takes the key */
    if ((st = rc_ctx_ensure_key(ctx)) != RC_OK)
        return st;
    if (!ctx->conn) {
        rc_url u;
        if ((st = rc_ctx_url(ctx, &u)) != RC_OK)
            return st;
        if (!(ctx->conn = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms)))
            return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    rc_keynames kn;
    rc_keys_for_queue(ctx->queue, &kn);
    char marker[340];
    snprintf(marker, sizeof marker, "rc:{%s}:removed", ctx->queue);
    if ((st = rc_tombstone_write(ctx->conn, &ctx->keys, ctx->queue, 0, "queue removed", 600000)) != RC_OK)
        return rc_seterr(ctx, st, "cannot mark queue '%s' removed: %s", ctx->queue, ctx->conn->err);
    /* the stream next: workers see NOGROUP, find the marker and exit; then
       every other key of the queue */
    redisReply *r = NULL;
    st = rc_conn_cmdf(ctx->conn, &r, "DEL %s", kn.tasks);
    if (r) freeReplyObject(r);
    if (st != RC_OK)
        return rc_seterr(ctx, st, "cannot remove queue '%s': %s", ctx->queue, ctx->conn->err);
    char pattern[300], cursor[32] = "0";
    snprintf(pattern, sizeof pattern, "rc:{%s}:*", ctx->queue);
    do {
        st = rc_conn_cmdf(ctx->conn, &r, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (st != RC_OK || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            if (r) freeReplyObject(r);
            return rc_seterr(ctx, st == RC_OK ? RC_EPROTO : st, "cannot list the keys of queue '%s': %s",
                             ctx->queue, ctx->conn->err);
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING ||
                (keys->element[i]->len == strlen(marker) && memcmp(keys->element[i]->str, marker, keys->element[i]->len) == 0))
                continue;
            redisReply *d = NULL;
            const char *av[] = {"UNLINK", keys->element[i]->str};
            size_t al[] = {6, keys->element[i]->len};
            (void)rc_conn_cmd(ctx->conn, &d, 2, av, al);
            if (d) freeReplyObject(d);
        }
        freeReplyObject(r);
        r = NULL;
    } while (strcmp(cursor, "0") != 0);
    return RC_OK;
}
