"""Hard budgets and rate limits: one atomic step to admit, one to settle.

Admit checks every rate window on the request's chain (key, user, team,
organization) and reserves what the request will likely cost against every
budget on it. Either every level admits and every reservation is made, or
nothing changes and the refusal names the level and tells the truth about it.
A stream that outgrows its reservation tops it up in increments before more of
it is relayed (dataplane/meter.py); when a level cannot cover the next
increment, the stream is cut. Settle replaces each reservation with the actual
cost, adds the tokens to the token windows, and teaches the estimate what this
key's requests for this model cost. Reservations that are never settled (a
worker killed mid-request) expire.

The estimate: a key with no recent requests for the model reserves the worst
case for the input (every three bytes of body a token at the dearer of the
input and cache-write prices) and ``min(max_tokens, 2048)`` of output (a
longer answer tops up), unless other keys of the organization have used the
model lately, whose figures it then starts from. Once it has some, input is reserved at the highest recent cost per byte (decaying by a
tenth per request) while the prompt cache can still be warm (5 minutes), with
any growth of the body since the last request at the worst case, and output
at the highest recent output count and a quarter more, never above ``max_tokens``.

Two stores share these semantics: Redis (one Lua script per step, so one round
trip; every key of an organization carries the hash tag ``{o<id>}``, so the
script runs on Redis Cluster) and an in-process store for the embedded
default.

Money is counted in nano-USD integers. A budget's counter for a period starts
from the floor the control plane publishes in the snapshot (the larger of the
persisted counter and the request log's sum), and every admission raises the
counter to the newest floor it is given: a Redis that comes back empty never
resets spend to zero, and what was spent between the last floor and the loss
is taken up by the next snapshot (republished every minute).
"""

from __future__ import annotations

import calendar
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NANO = 1_000_000_000
RESERVATION_TTL = 20 * 60  # longer than the upstream read timeout; a stream's top-ups renew it
# Seconds a settlement may wait to leave in the same write as the next admission
# (resp.py): the answer is already out, and its reservation, held that much
# longer, only errs on the safe side.
SETTLE_LINGER = 0.002
DEFAULT_OUTPUT_TOKENS = 2048  # output reserved with nothing learned; a longer answer tops its reservation up
WARM_SECONDS = 300  # Anthropic's prompt cache lives five minutes past its last use
DECAY = 0.9  # each request lowers the remembered highs by a tenth, then takes the max
OUTPUT_MARGIN = 1.25  # learned output is reserved with a quarter more; the stream meter counts with the same margin
STATS_TTL = 7 * 86400
_ROLLING_DAYS = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}


@dataclass(frozen=True, slots=True)
class BudgetRule:
    # "<id>.<created ms>": ids can be reused (SQLite), counters must not be.
    uid: str
    id: int
    organization_id: int
    label: str  # "Team 'payments'"
    amount_nano: int
    amount_usd: str
    period: str
    rolling: bool
    anchor: float
    floor_nano: int = 0
    floor_period_start: float = 0.0
    level: str = ""  # organization | team | user | key


@dataclass(frozen=True, slots=True)
class LimitRule:
    uid: str
    id: int
    organization_id: int
    label: str
    metric: str  # "requests" | "tokens"
    limit: int
    window: int  # seconds
    model: re.Pattern[str] | None = None
    provider_id: int | None = None

    def applies(self, model: str, provider_id: int | None) -> bool:
        if self.provider_id is not None and self.provider_id != provider_id:
            return False
        return self.model is None or self.model.match(model) is not None


def period_bounds(period: str, rolling: bool, anchor: float, now: float) -> tuple[float, float]:
    """[start, end) of the budget period containing ``now``, as epoch seconds (UTC)."""
    if rolling:
        length = _ROLLING_DAYS[period] * 86400
        start = anchor + ((now - anchor) // length) * length
        return start, start + length
    t = datetime.fromtimestamp(now, tz=UTC)
    if period == "daily":
        s = t.replace(hour=0, minute=0, second=0, microsecond=0)
        e = s + timedelta(days=1)
    elif period == "weekly":
        s = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        e = s + timedelta(days=7)
    elif period == "monthly":
        s = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = calendar.monthrange(s.year, s.month)[1]
        e = s + timedelta(days=days)
    elif period == "yearly":
        s = t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        e = s.replace(year=s.year + 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return s.timestamp(), e.timestamp()


def policy_uid(pk: int, created_at: float) -> str:
    return f"{pk}.{int(created_at * 1000)}"


def budget_key(prefix: str, org_id: int, budget_uid: str, start: float) -> str:
    return f"{prefix}{{o{org_id}}}:b:{budget_uid}:{int(start)}"


def window_key(prefix: str, org_id: int, limit_uid: str, index: int) -> str:
    return f"{prefix}{{o{org_id}}}:w:{limit_uid}:{index}"


def stats_key(prefix: str, org_id: int, key_id: int, key_prefix: str, model: str) -> str:
    """What this key's recent requests for this model cost: the estimate's memory
    (ids can be reused on SQLite; with the key's random prefix they are not)."""
    return f"{prefix}{{o{org_id}}}:e:{key_id}.{key_prefix}:{model}"


def org_stats_key(prefix: str, org_id: int, org_uid: str, model: str) -> str:
    """The same for the whole organization: what a key new to the model starts from
    (the provider's prompt cache is shared across the organization's keys too)."""
    return f"{prefix}{{o{org_id}}}:e:org.{org_uid}:{model}"


@dataclass(slots=True)
class Estimate:
    """The facts a reservation is estimated from; the store adds what it remembers."""

    stats: str  # stats_key()
    org_stats: str  # org_stats_key(): used while the key's own has nothing
    body_bytes: int
    cold_input_nano: int  # the whole body at the worst-case input price
    output_nano: float  # per output token, at the dearest model the request may be served by
    max_tokens: int


def estimate_reserve(
    est: Estimate, seen_input_per_kib: float, seen_output: float, seen_at: float, seen_bytes: int, now: float
) -> tuple[int, int]:
    """(nano-USD to reserve, output tokens that covers) from what the store remembers
    (zeros when it remembers nothing). The Lua in ADMIT_LUA computes the same."""
    body = est.body_bytes
    reserve_in = est.cold_input_nano
    if seen_at and now - seen_at < WARM_SECONDS and body > 0:
        kept = min(body, seen_bytes)
        learned = math.ceil(seen_input_per_kib * kept / 1024 + est.cold_input_nano * (body - kept) / body)
        reserve_in = min(reserve_in, learned)
    if seen_at:
        out = min(est.max_tokens, max(1, math.ceil(seen_output * OUTPUT_MARGIN)))
    else:
        out = min(est.max_tokens, DEFAULT_OUTPUT_TOKENS)
    return reserve_in + math.ceil(out * est.output_nano) + 1, out


# --- the plan for one request ---------------------------------------------------


@dataclass(slots=True)
class BudgetStep:
    rule: BudgetRule
    key: str
    reserve: int
    floor: int
    ttl: int
    end: float


@dataclass(slots=True)
class WindowStep:
    rule: LimitRule
    current: str
    previous: str
    prev_weight: float
    elapsed: float
    ttl: int


@dataclass(slots=True)
class Plan:
    request_id: str
    budgets: list[BudgetStep] = field(default_factory=list)
    windows: list[WindowStep] = field(default_factory=list)
    admitted: bool = False
    estimate: Estimate | None = None
    held: int = 0  # nano-USD reserved on every budget of the chain, top-ups included
    output_tokens: int = 0  # the output the first reservation covers
    bytes_per_token: float = 0.0  # relayed stream bytes per output token, as this key's streams ran (0: unknown)
    relayed: int = 0  # stream bytes relayed after the opening event (the meter counts them)
    # The budget nearest its limit at admission, and what it then held (spent + reserved, this request's included).
    nearest: int = -1
    nearest_used: int = 0

    @property
    def empty(self) -> bool:
        return not self.budgets and not self.windows


class Refusal(Exception):
    def __init__(
        self, status: int, message: str, retry_after: int | None = None, level: str = "", step: BudgetStep | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.level = level
        # The budget that refused, if one did.
        self.step = step


class _Periods:
    """Caches each budget's current period until it ends, so the hot path does
    no calendar arithmetic."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, bool, float], tuple[float, float]] = {}

    def bounds(self, rule: BudgetRule, now: float) -> tuple[float, float]:
        ck = (rule.uid, rule.period, rule.rolling, rule.anchor)
        hit = self._cache.get(ck)
        if hit is not None and hit[0] <= now < hit[1]:
            return hit
        hit = period_bounds(rule.period, rule.rolling, rule.anchor, now)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[ck] = hit
        return hit


PERIODS = _Periods()


def plan_for(
    *,
    prefix: str,
    request_id: str,
    budgets: tuple[BudgetRule, ...],
    limits: tuple[LimitRule, ...],
    model: str,
    provider_id: int | None,
    reserve_nano: int,
    now: float,
    estimate: Estimate | None = None,
) -> Plan:
    """The steps of one admission. With an ``estimate`` the store works out the
    reservation from what it remembers; without one, ``reserve_nano`` is it."""
    plan = Plan(request_id, estimate=estimate)
    for rule in budgets:
        start, end = PERIODS.bounds(rule, now)
        floor = rule.floor_nano if rule.floor_period_start == start else 0
        plan.budgets.append(
            BudgetStep(rule, budget_key(prefix, rule.organization_id, rule.uid, start), reserve_nano, floor, int(end - now) + 3600, end)
        )
    for limit in limits:
        if not limit.applies(model, provider_id):
            continue
        index, offset = divmod(now, limit.window)
        idx = int(index)
        plan.windows.append(
            WindowStep(
                limit,
                window_key(prefix, limit.organization_id, limit.uid, idx),
                window_key(prefix, limit.organization_id, limit.uid, idx - 1),
                (limit.window - offset) / limit.window,
                offset,
                limit.window * 2 + 5,
            )
        )
    return plan


DEFAULT_MAX_TOKENS = 4096


def reservation_nano(body_bytes: int, max_tokens: int, price: Any) -> int:
    """What a key with no recent requests for the model reserves: every three
    bytes of body a token at the dearer of the input and cache-write prices,
    plus ``min(max_tokens, 2048)`` of output."""
    return int((body_bytes // 3 + 1) * price.reserve_input_nano + min(max_tokens, DEFAULT_OUTPUT_TOKENS) * price.output_nano) + 2


def _usd(nano: float) -> str:
    usd = max(nano, 0) / NANO
    return f"${usd:,.4f}" if 0 < usd < 0.01 else f"${usd:,.2f}"


def budget_refusal(step: BudgetStep, spent: int = -1, reserved: int = 0, need: int = 0) -> Refusal:
    """The truth about a budget that cannot cover a request: used up only when it is."""
    rule = step.rule
    resets = datetime.fromtimestamp(step.end, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    budget = f"{rule.label} {rule.period} budget of {_usd(rule.amount_nano)}"
    left = rule.amount_nano - spent
    if spent < 0 or left <= 0:
        return Refusal(
            402, f"{budget} is used up; resets {resets}. Ask your platform admin to raise it.", level=rule.label, step=step
        )
    held = f" ({_usd(reserved)} of it held by requests still running)" if reserved > 0 else ""
    message = (
        f"{budget} has {_usd(left)} left{held}, less than this request may cost (about {_usd(need)}); "
        f"resets {resets}."
    )
    if reserved > 0 and left - reserved >= need:
        message += " Retry when the running requests finish, or ask your platform admin to raise it."
    else:
        message += " Ask your platform admin to raise it."
    return Refusal(402, message, level=rule.label, step=step)


WARN_AT = (0.95, 0.75)  # the thresholds at which Claude Code prints its usage notice
_UNIFIED = b"anthropic-ratelimit-unified-"


def usage_headers(plan: Plan) -> list[tuple[bytes, bytes]]:
    """Claude Code's own usage-limit headers for the budget nearest its limit
    (../shared/design/CLAUDE-CODE-SIGNIN.md): utilization counts what requests
    still running hold, this one's reservation included."""
    if plan.nearest < 0:
        return []
    step = plan.budgets[plan.nearest]
    limit = step.rule.amount_nano
    used = min(plan.nearest_used / limit, 0.99) if limit > 0 else 0.99
    passed = next((t for t in WARN_AT if used >= t), None)
    status = b"allowed_warning" if passed is not None else b"allowed"
    reset = str(int(step.end)).encode()
    headers = [
        (_UNIFIED + b"status", status),
        (_UNIFIED + b"representative-claim", b"overage"),
        (_UNIFIED + b"overage-status", status),
        (_UNIFIED + b"overage-utilization", f"{used:.2f}".encode()),
        (_UNIFIED + b"reset", reset),
        (_UNIFIED + b"overage-reset", reset),
    ]
    if passed is not None:
        headers.append((_UNIFIED + b"overage-surpassed-threshold", str(passed).encode()))
    if step.rule.level in ("team", "organization"):
        headers.append((_UNIFIED + b"overage-scope", b"group_pool"))
    return headers


def billing_refusal_headers(step: BudgetStep, now: float) -> tuple[tuple[bytes, bytes], ...]:
    """The 429 a signed-in Claude Code shows as its own "usage limit reached"
    message and does not retry (CLAUDE-CODE-SIGNIN.md). ``representative-claim``
    and ``overage-status`` stay off: with them the client replaces our message."""
    reset = str(int(step.end)).encode()
    headers = [
        (b"retry-after", str(max(1, int(step.end - now))).encode()),
        (_UNIFIED + b"status", b"rejected"),
        (_UNIFIED + b"reset", reset),
        (_UNIFIED + b"overage-reset", reset),
        (_UNIFIED + b"overage-utilization", b"1"),
        (_UNIFIED + b"overage-surpassed-threshold", b"1"),
        (_UNIFIED + b"overage-period", step.rule.period.encode()),
        (_UNIFIED + b"overage-disabled-reason", b"org_spend_cap_reached"),
    ]
    if step.rule.level in ("team", "organization"):
        headers.append((_UNIFIED + b"overage-scope", b"group_pool"))
    return tuple(headers)


def cut_message(step: BudgetStep) -> str:
    rule = step.rule
    resets = datetime.fromtimestamp(step.end, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{rule.label} {rule.period} budget of {_usd(rule.amount_nano)} cannot cover more of this answer, "
        f"so Tollgate ended it here; what was used is charged. Resets {resets}; ask your platform admin to raise it."
    )


# Claude Code honours retry-after up to 60 s and gives up beyond that.
RETRY_AFTER_CAP = 60


def window_refusal(step: WindowStep, current: float, previous: float) -> Refusal:
    rule = step.rule
    w = rule.window
    remaining = w - step.elapsed
    need = rule.limit - (1 if rule.metric == "requests" else 0)
    if current > need:
        wait = remaining + (w * (1 - need / current) if current else 0)
    elif previous:
        wait = max(0.0, remaining - w * (need - current) / previous)
    else:
        wait = remaining
    wait_s = max(1, int(wait + 0.999))
    unit = {60: "minute", 3600: "hour", 86400: "day"}.get(w)
    per = f"per {unit}" if unit else f"per {w} s"
    message = f"{rule.label} is limited to {rule.limit:,} {rule.metric} {per}; try again in {wait_s} s."
    if wait_s > RETRY_AFTER_CAP:
        message += f" (retry-after is capped at {RETRY_AFTER_CAP} s, so a client may be refused again.)"
    return Refusal(429, message, retry_after=min(wait_s, RETRY_AFTER_CAP))


# --- Redis ------------------------------------------------------------------------

# KEYS: per budget (hash, reservation zset); per window (current, previous); the estimate's stats hashes
# (the key's, the organization's), if any.
# ARGV: now_ms, request_id, reservation_expiry_ms, n_budgets, n_windows,
#       per budget: limit, reserve, floor, ttl; per window: limit, prev_weight, is_requests, ttl;
#       has_estimate, then body_bytes, cold_input, output_nano, max_tokens.
# With an estimate, the reservation is worked out here from the stats (estimate_reserve() in Lua).
# Returns {0, reserve, output_tokens, bytes_per_token, nearest_budget, its_used} admitted; {1, i, spent, reserved, reserve} budget i
# refused; {2, i, current, previous} window i refused.
ADMIT_LUA = """
local WARM_MS, OUTPUT_MARGIN, DEFAULT_OUTPUT = %(warm_ms)d, %(margin)r, %(default_output)d
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local expiry = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local nw = tonumber(ARGV[5])
local e = 6 + 4 * nb + 4 * nw
local reserve = nil
local out = 0
local bpt = '0'
if tonumber(ARGV[e]) == 1 then
  local body, cold = tonumber(ARGV[e+1]), tonumber(ARGV[e+2])
  local out_nano, max_tokens = tonumber(ARGV[e+3]), tonumber(ARGV[e+4])
  local st = redis.call('HMGET', KEYS[2*nb+2*nw+1], 'in', 'out', 'ts', 'bytes', 'bpt')
  if not st[3] then st = redis.call('HMGET', KEYS[2*nb+2*nw+2], 'in', 'out', 'ts', 'bytes', 'bpt') end
  bpt = st[5] or '0'
  local seen_at = tonumber(st[3] or '0')
  local reserve_in = cold
  if seen_at > 0 and now - seen_at < WARM_MS and body > 0 then
    local kept = math.min(body, tonumber(st[4] or '0'))
    local learned = math.ceil(tonumber(st[1] or '0') * kept / 1024 + cold * (body - kept) / body)
    reserve_in = math.min(reserve_in, learned)
  end
  if seen_at > 0 then
    out = math.min(max_tokens, math.max(1, math.ceil(tonumber(st[2] or '0') * OUTPUT_MARGIN)))
  else
    out = math.min(max_tokens, DEFAULT_OUTPUT)
  end
  reserve = reserve_in + math.ceil(out * out_nano) + 1
end
local a = 6
local fresh = {}
local nearest, nearest_used, nearest_ratio = 0, 0, -1
for i = 1, nb do
  local b, z = KEYS[2*i-1], KEYS[2*i]
  local limit, floor = tonumber(ARGV[a]), tonumber(ARGV[a+2])
  if reserve == nil then reserve = tonumber(ARGV[a+1]) end
  local state = redis.call('HMGET', b, 'init', 'spent', 'reserved')
  local spent = tonumber(state[2] or '0')
  local reserved = tonumber(state[3] or '0')
  -- Never below the durable record: at first touch (or when the store came back
  -- empty) and whenever a newer snapshot's floor has caught up with lost spend.
  if floor > spent then
    spent = floor
    redis.call('HSET', b, 'spent', floor)
  end
  if not state[1] then
    redis.call('HSET', b, 'init', 1)
    fresh[i] = true
  end
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 200)
  for _, m in ipairs(expired) do
    local amount = redis.call('HGET', b, 'r:' .. m)
    if amount then
      reserved = reserved - tonumber(amount)
      redis.call('HINCRBY', b, 'reserved', -tonumber(amount))
      redis.call('HDEL', b, 'r:' .. m)
    end
    redis.call('ZREM', z, m)
  end
  if spent + reserved + reserve > limit then
    return {1, i, tostring(spent), tostring(reserved), tostring(reserve)}
  end
  local used = spent + reserved + reserve
  if limit > 0 and used / limit > nearest_ratio then
    nearest, nearest_used, nearest_ratio = i, used, used / limit
  end
  a = a + 4
end
if reserve == nil then reserve = 0 end
local wbase = 2 * nb
local wa = a
for i = 1, nw do
  local counts = redis.call('MGET', KEYS[wbase+2*i-1], KEYS[wbase+2*i])
  local cur = tonumber(counts[1] or '0')
  local prev = tonumber(counts[2] or '0')
  local limit, weight, is_req = tonumber(ARGV[wa]), tonumber(ARGV[wa+1]), tonumber(ARGV[wa+2])
  local count = prev * weight + cur
  if (is_req == 1 and count + 1 > limit) or (is_req == 0 and count >= limit) then
    return {2, i, tostring(cur), tostring(prev)}
  end
  wa = wa + 4
end
a = 6
for i = 1, nb do
  local b, z = KEYS[2*i-1], KEYS[2*i]
  local ttl = tonumber(ARGV[a+3])
  if reserve > 0 then
    redis.call('HINCRBY', b, 'reserved', reserve)
    redis.call('HSET', b, 'r:' .. rid, reserve)
    redis.call('ZADD', z, expiry, rid)
  end
  -- Counters are per period: their lifetime is set once, at first touch.
  if fresh[i] then
    redis.call('EXPIRE', b, ttl)
    redis.call('EXPIRE', z, ttl)
  end
  a = a + 4
end
wa = a
for i = 1, nw do
  if tonumber(ARGV[wa+2]) == 1 then
    local key = KEYS[wbase+2*i-1]
    if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, tonumber(ARGV[wa+3])) end
  end
  wa = wa + 4
end
return {0, tostring(reserve), out, bpt, nearest, tostring(nearest_used)}
"""

# The estimate's constants are part of the scripts, not of every call's arguments.
_CONSTANTS = {
    "warm_ms": WARM_SECONDS * 1000, "margin": OUTPUT_MARGIN, "default_output": DEFAULT_OUTPUT_TOKENS,
    "decay": DECAY, "stats_ttl": STATS_TTL,
}
ADMIT_LUA %= _CONSTANTS

# A stream outgrew its reservation: add ``amount`` to it on every budget, or on none.
# KEYS: per budget (hash, zset). ARGV: request_id, amount, expiry_ms, per budget: limit, ttl.
# Returns {0} topped up; {1, i, spent, reserved} budget i cannot cover it.
TOPUP_LUA = """
local rid = ARGV[1]
local amount = tonumber(ARGV[2])
local nb = #KEYS / 2
for i = 1, nb do
  local state = redis.call('HMGET', KEYS[2*i-1], 'spent', 'reserved')
  local spent, reserved = tonumber(state[1] or '0'), tonumber(state[2] or '0')
  if spent + reserved + amount > tonumber(ARGV[2+2*i]) then
    return {1, i, tostring(spent), tostring(reserved)}
  end
end
for i = 1, nb do
  local b = KEYS[2*i-1]
  redis.call('HINCRBY', b, 'reserved', amount)
  redis.call('HINCRBY', b, 'r:' .. rid, amount)
  redis.call('ZADD', KEYS[2*i], tonumber(ARGV[3]), rid)
  -- A store that lost the counter mid-stream: the new one still ends with its period.
  if redis.call('TTL', b) < 0 then redis.call('EXPIRE', b, tonumber(ARGV[3+2*i])) end
end
return {0}
"""

# KEYS: per budget (hash, zset); per token window (current); the estimate's stats hashes, if any.
# ARGV: request_id, n_budgets, n_windows, per budget: actual, ttl; per window: tokens, ttl;
#       has_observation, then input_nano, body_bytes, output_tokens, now_ms, relayed_bytes.
SETTLE_LUA = """
local DECAY, STATS_TTL = %(decay)r, %(stats_ttl)d
local rid = ARGV[1]
local nb = tonumber(ARGV[2])
local nw = tonumber(ARGV[3])
local a = 4
for i = 1, nb do
  local b, z = KEYS[2*i-1], KEYS[2*i]
  local amount = redis.call('HGET', b, 'r:' .. rid)
  if amount then
    redis.call('HINCRBY', b, 'reserved', -tonumber(amount))
    redis.call('HDEL', b, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
  local actual = tonumber(ARGV[a])
  if actual > 0 then redis.call('HINCRBY', b, 'spent', actual) end
  redis.call('EXPIRE', b, tonumber(ARGV[a+1]))
  a = a + 2
end
for i = 1, nw do
  local key = KEYS[2*nb+i]
  local tokens = tonumber(ARGV[a])
  if tokens > 0 then
    redis.call('INCRBY', key, tokens)
    redis.call('EXPIRE', key, tonumber(ARGV[a+1]))
  end
  a = a + 2
end
if tonumber(ARGV[a]) == 1 then
  local input, body, out = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3])
  local decay = DECAY
  local relayed = tonumber(ARGV[a+5])
  for k = 1, 2 do
    local sk = KEYS[2*nb+nw+k]
    local st = redis.call('HMGET', sk, 'in', 'out', 'bpt')
    local rate = input * 1024 / math.max(body, 1)
    redis.call('HSET', sk, 'in', tostring(math.max(rate, tonumber(st[1] or '0') * decay)),
      'out', tostring(math.max(out, tonumber(st[2] or '0') * decay)), 'ts', ARGV[a+4], 'bytes', body)
    if relayed > 0 and out > 0 then
      -- The fewest bytes a token took lately (a decaying minimum): estimates err high.
      local seen = tonumber(st[3] or '0')
      local bpt = relayed / out
      if seen > 0 then bpt = math.min(bpt, seen / decay) end
      redis.call('HSET', sk, 'bpt', tostring(bpt))
    end
    redis.call('EXPIRE', sk, STATS_TTL)
  end
end
return 0
"""


SETTLE_LUA %= _CONSTANTS


# A reservation whose request will never settle (its worker died): give it back.
RELEASE_LUA = """
local rid = ARGV[1]
for i = 1, #KEYS / 2 do
  local b, z = KEYS[2*i-1], KEYS[2*i]
  local amount = redis.call('HGET', b, 'r:' .. rid)
  if amount then
    redis.call('HINCRBY', b, 'reserved', -tonumber(amount))
    redis.call('HDEL', b, 'r:' .. rid)
  end
  redis.call('ZREM', z, rid)
end
return 0
"""


def _estimate_args(plan: Plan) -> list[Any]:
    est = plan.estimate
    if est is None:
        return [0]
    return [1, est.body_bytes, est.cold_input_nano, repr(est.output_nano), est.max_tokens]


def _observation_args(plan: Plan, observed: tuple[int, int] | None, now: float) -> list[Any]:
    if plan.estimate is None or observed is None:
        return [0]
    input_nano, output_tokens = observed
    return [1, input_nano, plan.estimate.body_bytes, output_tokens, int(now * 1000), plan.relayed]


class RedisCounters:
    """The counters in Redis, over a pipelined connection (dataplane/resp.py)."""

    def __init__(self, pipe: Any, clock: Any = time.time) -> None:
        self.pipe = pipe
        self.clock = clock

    async def admit(self, plan: Plan, now: float) -> None:
        keys: list[str] = []
        args: list[Any] = [int(now * 1000), plan.request_id, int((now + RESERVATION_TTL) * 1000), len(plan.budgets), len(plan.windows)]
        for s in plan.budgets:
            keys += (s.key, s.key + ":r")
            args += (s.rule.amount_nano, s.reserve, s.floor, s.ttl)
        for w in plan.windows:
            keys += (w.current, w.previous)
            args += (w.rule.limit, repr(w.prev_weight), 1 if w.rule.metric == "requests" else 0, w.ttl)
        if plan.estimate is not None:
            keys += (plan.estimate.stats, plan.estimate.org_stats)
        args += _estimate_args(plan)
        result = await self.pipe.script(ADMIT_LUA, keys, args)
        code = int(result[0])
        if code == 0:
            plan.admitted = True
            plan.held = int(result[1])
            plan.output_tokens = int(result[2])
            plan.bytes_per_token = float(result[3])
            plan.nearest = int(result[4]) - 1
            plan.nearest_used = int(result[5])
            return
        index = int(result[1]) - 1
        if code == 1:
            raise budget_refusal(plan.budgets[index], int(result[2]), int(result[3]), int(result[4]))
        raise window_refusal(plan.windows[index], float(result[2]), float(result[3]))

    async def top_up(self, plan: Plan, amount: int) -> None:
        """Add ``amount`` to the request's reservation on every budget, or raise
        Refusal naming the level that cannot cover it."""
        keys: list[str] = []
        limits: list[Any] = []
        for s in plan.budgets:
            keys += (s.key, s.key + ":r")
            limits += (s.rule.amount_nano, s.ttl)
        expiry = int((self.clock() + RESERVATION_TTL) * 1000)
        result = await self.pipe.script(TOPUP_LUA, keys, [plan.request_id, amount, expiry, *limits])
        if int(result[0]) != 0:
            step = plan.budgets[int(result[1]) - 1]
            raise Refusal(402, cut_message(step), level=step.rule.label)
        plan.held += amount

    async def settle(self, plan: Plan, cost_nano: int, tokens: int, observed: tuple[int, int] | None = None) -> None:
        token_windows = [w for w in plan.windows if w.rule.metric == "tokens"]
        keys: list[str] = []
        args: list[Any] = [plan.request_id, len(plan.budgets), len(token_windows)]
        budget_args: list[Any] = []
        for s in plan.budgets:
            keys += (s.key, s.key + ":r")
            budget_args += (cost_nano, s.ttl)
        window_args: list[Any] = []
        for w in token_windows:
            keys.append(w.current)
            window_args += (tokens, w.ttl)
        if plan.estimate is not None:
            keys += (plan.estimate.stats, plan.estimate.org_stats)
        tail = _observation_args(plan, observed, self.clock())
        await self.pipe.script(SETTLE_LUA, keys, args + budget_args + window_args + tail, linger=SETTLE_LINGER)

    async def release(self, request_id: str, budget_keys: list[str]) -> None:
        """Drop a request's reservations without charging (see RELEASE_LUA)."""
        keys: list[str] = []
        for key in budget_keys:
            keys += (key, key + ":r")
        if keys:
            await self.pipe.script(RELEASE_LUA, keys, [request_id])

    async def spent(self, key: str) -> tuple[int, int]:
        spent, reserved = await self.pipe.call("HMGET", key, "spent", "reserved")
        return int(spent or 0), int(reserved or 0)


# --- in-process (embedded default) ------------------------------------------------


@dataclass(slots=True)
class _Budget:
    spent: int = 0
    reserved: int = 0
    reservations: dict[str, tuple[int, float]] = field(default_factory=dict)
    expires: float = 0.0


class MemoryCounters:
    """The same semantics in one process: asyncio runs each step without interleaving."""

    def __init__(self, clock: Any = time.time) -> None:
        self.budgets: dict[str, _Budget] = {}
        self.windows: dict[str, tuple[float, float]] = {}  # key -> (count, expires)
        # stats key -> (input nano per KiB, output tokens, seen at, body bytes, expires, bytes per token)
        self.stats: dict[str, tuple[float, float, float, int, float, float]] = {}
        self.clock = clock
        self._sweep_at = 0.0

    def _sweep(self, now: float) -> None:
        if now < self._sweep_at:
            return
        self._sweep_at = now + 60
        for key in [k for k, b in self.budgets.items() if b.expires < now]:
            del self.budgets[key]
        for key in [k for k, (_, exp) in self.windows.items() if exp < now]:
            del self.windows[key]
        for key in [k for k, st in self.stats.items() if st[4] < now]:
            del self.stats[key]

    def _window(self, key: str, now: float) -> float:
        entry = self.windows.get(key)
        if entry is None or entry[1] < now:
            return 0.0
        return entry[0]

    async def admit(self, plan: Plan, now: float) -> None:
        self._sweep(now)
        reserve = None
        out = 0
        est = plan.estimate
        if est is not None:
            st = self.stats.get(est.stats)
            if st is None or st[4] <= now:
                st = self.stats.get(est.org_stats)
            if st is not None and st[4] <= now:
                st = None
            reserve, out = estimate_reserve(est, *(st[:4] if st else (0.0, 0.0, 0.0, 0)), now)
            plan.bytes_per_token = st[5] if st else 0.0
        for step in plan.budgets:
            if reserve is None:
                reserve = step.reserve
            b = self.budgets.get(step.key)
            if b is None:
                b = self.budgets[step.key] = _Budget(spent=step.floor)
            elif step.floor > b.spent:
                b.spent = step.floor
            for rid in [r for r, (_, exp) in b.reservations.items() if exp <= now]:
                amount, _ = b.reservations.pop(rid)
                b.reserved -= amount
            if b.spent + b.reserved + reserve > step.rule.amount_nano:
                raise budget_refusal(step, b.spent, b.reserved, reserve)
        reserve = reserve or 0
        ratio = -1.0
        for i, step in enumerate(plan.budgets):
            b = self.budgets[step.key]
            used = b.spent + b.reserved + reserve
            limit = step.rule.amount_nano
            if limit > 0 and used / limit > ratio:
                plan.nearest, plan.nearest_used, ratio = i, used, used / limit
        for w in plan.windows:
            cur = self._window(w.current, now)
            prev = self._window(w.previous, now)
            count = prev * w.prev_weight + cur
            is_req = w.rule.metric == "requests"
            if (is_req and count + 1 > w.rule.limit) or (not is_req and count >= w.rule.limit):
                raise window_refusal(w, cur, prev)
        for step in plan.budgets:
            b = self.budgets[step.key]
            if reserve:
                b.reserved += reserve
                b.reservations[plan.request_id] = (reserve, now + RESERVATION_TTL)
            b.expires = now + step.ttl
        for w in plan.windows:
            if w.rule.metric == "requests":
                self.windows[w.current] = (self._window(w.current, now) + 1, now + w.ttl)
        plan.admitted = True
        plan.held = reserve
        plan.output_tokens = out

    async def top_up(self, plan: Plan, amount: int) -> None:
        now = self.clock()
        found = [(step, self.budgets.get(step.key)) for step in plan.budgets]
        for step, b in found:
            if b is not None and b.spent + b.reserved + amount > step.rule.amount_nano:
                raise Refusal(402, cut_message(step), level=step.rule.label)
        for step, b in found:
            if b is None:
                b = self.budgets[step.key] = _Budget(spent=step.floor, expires=now + step.ttl)
            held = b.reservations.get(plan.request_id, (0, 0.0))[0]
            b.reserved += amount
            b.reservations[plan.request_id] = (held + amount, now + RESERVATION_TTL)
        plan.held += amount

    async def settle(self, plan: Plan, cost_nano: int, tokens: int, observed: tuple[int, int] | None = None) -> None:
        now = self.clock()
        for step in plan.budgets:
            b = self.budgets.get(step.key)
            if b is None:
                b = self.budgets[step.key] = _Budget(spent=step.floor, expires=now + step.ttl)
            held = b.reservations.pop(plan.request_id, None)
            if held is not None:
                b.reserved -= held[0]
            b.spent += cost_nano
        for w in plan.windows:
            if w.rule.metric == "tokens" and tokens:
                self.windows[w.current] = (self._window(w.current, now) + tokens, now + w.ttl)
        est = plan.estimate
        if est is not None and observed is not None:
            input_nano, output_tokens = observed
            for name in (est.stats, est.org_stats):
                old = self.stats.get(name)
                if old is not None and old[4] <= now:
                    old = None
                rate = input_nano * 1024 / max(est.body_bytes, 1)
                old_in, old_out, old_bpt = (old[0], old[1], old[5]) if old else (0.0, 0.0, 0.0)
                bpt = old_bpt
                if plan.relayed > 0 and output_tokens > 0:
                    bpt = plan.relayed / output_tokens
                    if old_bpt > 0:
                        bpt = min(bpt, old_bpt / DECAY)
                self.stats[name] = (
                    max(rate, old_in * DECAY), max(float(output_tokens), old_out * DECAY), now, est.body_bytes,
                    now + STATS_TTL, bpt,
                )

    async def release(self, request_id: str, budget_keys: list[str]) -> None:
        for key in budget_keys:
            b = self.budgets.get(key)
            held = b.reservations.pop(request_id, None) if b else None
            if b is not None and held is not None:
                b.reserved -= held[0]

    async def spent(self, key: str) -> tuple[int, int]:
        b = self.budgets.get(key)
        return (b.spent, b.reserved) if b else (0, 0)
