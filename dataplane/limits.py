"""Hard budgets and rate limits: one atomic step to admit, one to settle.

Admit checks every rate window on the request's chain (key, user, team,
organization) and reserves the request's worst-case cost against every budget
on it. Either every level admits and every reservation is made, or nothing
changes and the refusal names the level. Settle replaces each reservation with
the actual cost and adds the tokens to the token windows; a failed or cut
request settles at what the provider reported, often nothing. Reservations
that are never settled (a worker killed mid-request) expire.

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
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NANO = 1_000_000_000
RESERVATION_TTL = 20 * 60  # longer than the upstream read timeout
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

    @property
    def empty(self) -> bool:
        return not self.budgets and not self.windows


class Refusal(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


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
) -> Plan:
    plan = Plan(request_id)
    for rule in budgets:
        start, end = PERIODS.bounds(rule, now)
        floor = rule.floor_nano if rule.floor_period_start == start else 0
        plan.budgets.append(
            BudgetStep(rule, budget_key(prefix, rule.organization_id, rule.uid, start), reserve_nano, floor, int(end - now) + 3600, end)
        )
    for rule in limits:
        if not rule.applies(model, provider_id):
            continue
        index, offset = divmod(now, rule.window)
        idx = int(index)
        plan.windows.append(
            WindowStep(
                rule,
                window_key(prefix, rule.organization_id, rule.uid, idx),
                window_key(prefix, rule.organization_id, rule.uid, idx - 1),
                (rule.window - offset) / rule.window,
                offset,
                rule.window * 2 + 5,
            )
        )
    return plan


DEFAULT_MAX_TOKENS = 4096


def reservation_nano(body_bytes: int, max_tokens: int, price: Any) -> int:
    """The worst case a request can cost: every byte of the body a token at the
    dearer of the input and cache-write prices, plus ``max_tokens`` of output.
    (Tokens run at about four bytes of JSON each, so this over-reserves.)"""
    return int((body_bytes // 3 + 1) * price.reserve_input_nano + max_tokens * price.output_nano) + 1


def budget_refusal(step: BudgetStep) -> Refusal:
    rule = step.rule
    resets = datetime.fromtimestamp(step.end, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    amount = f"${float(rule.amount_usd):,.2f}"
    return Refusal(
        402,
        f"{rule.label} {rule.period} budget of {amount} is used up; resets {resets}. "
        "Ask your platform admin to raise it.",
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

# KEYS: per budget (hash, reservation zset); per window (current, previous).
# ARGV: now_ms, request_id, reservation_expiry_ms, n_budgets, n_windows,
#       per budget: limit, reserve, floor, ttl; per window: limit, prev_weight, is_requests, ttl.
# Returns {0} admitted; {1, i} budget i refused; {2, i, current, previous} window i refused.
ADMIT_LUA = """
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local expiry = tonumber(ARGV[3])
local nb = tonumber(ARGV[4])
local nw = tonumber(ARGV[5])
local a = 6
local fresh = {}
for i = 1, nb do
  local b, z = KEYS[2*i-1], KEYS[2*i]
  local limit, reserve, floor = tonumber(ARGV[a]), tonumber(ARGV[a+1]), tonumber(ARGV[a+2])
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
  if spent + reserved + reserve > limit then return {1, i} end
  a = a + 4
end
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
  local reserve, ttl = tonumber(ARGV[a+1]), tonumber(ARGV[a+3])
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
return {0}
"""

# KEYS: per budget (hash, zset); per token window (current).
# ARGV: request_id, n_budgets, n_windows, per budget: actual, ttl; per window: tokens, ttl.
SETTLE_LUA = """
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
return 0
"""


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


class RedisCounters:
    """The counters in Redis, over a pipelined connection (dataplane/resp.py)."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    async def admit(self, plan: Plan, now: float) -> None:
        keys: list[str] = []
        args: list[Any] = [int(now * 1000), plan.request_id, int((now + RESERVATION_TTL) * 1000), len(plan.budgets), len(plan.windows)]
        for s in plan.budgets:
            keys += (s.key, s.key + ":r")
            args += (s.rule.amount_nano, s.reserve, s.floor, s.ttl)
        for w in plan.windows:
            keys += (w.current, w.previous)
            args += (w.rule.limit, repr(w.prev_weight), 1 if w.rule.metric == "requests" else 0, w.ttl)
        result = await self.pipe.script(ADMIT_LUA, keys, args)
        code = int(result[0])
        if code == 0:
            plan.admitted = True
            return
        index = int(result[1]) - 1
        if code == 1:
            raise budget_refusal(plan.budgets[index])
        raise window_refusal(plan.windows[index], float(result[2]), float(result[3]))

    async def settle(self, plan: Plan, cost_nano: int, tokens: int) -> None:
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
        await self.pipe.script(SETTLE_LUA, keys, args + budget_args + window_args)

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

    def _window(self, key: str, now: float) -> float:
        entry = self.windows.get(key)
        if entry is None or entry[1] < now:
            return 0.0
        return entry[0]

    async def admit(self, plan: Plan, now: float) -> None:
        self._sweep(now)
        for step in plan.budgets:
            b = self.budgets.get(step.key)
            if b is None:
                b = self.budgets[step.key] = _Budget(spent=step.floor)
            elif step.floor > b.spent:
                b.spent = step.floor
            for rid in [r for r, (_, exp) in b.reservations.items() if exp <= now]:
                amount, _ = b.reservations.pop(rid)
                b.reserved -= amount
            if b.spent + b.reserved + step.reserve > step.rule.amount_nano:
                raise budget_refusal(step)
        for w in plan.windows:
            cur = self._window(w.current, now)
            prev = self._window(w.previous, now)
            count = prev * w.prev_weight + cur
            is_req = w.rule.metric == "requests"
            if (is_req and count + 1 > w.rule.limit) or (not is_req and count >= w.rule.limit):
                raise window_refusal(w, cur, prev)
        for step in plan.budgets:
            b = self.budgets[step.key]
            if step.reserve:
                b.reserved += step.reserve
                b.reservations[plan.request_id] = (step.reserve, now + RESERVATION_TTL)
            b.expires = now + step.ttl
        for w in plan.windows:
            if w.rule.metric == "requests":
                self.windows[w.current] = (self._window(w.current, now) + 1, now + w.ttl)
        plan.admitted = True

    async def settle(self, plan: Plan, cost_nano: int, tokens: int) -> None:
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

    async def release(self, request_id: str, budget_keys: list[str]) -> None:
        for key in budget_keys:
            b = self.budgets.get(key)
            held = b.reservations.pop(request_id, None) if b else None
            if b is not None and held is not None:
                b.reserved -= held[0]

    async def spent(self, key: str) -> tuple[int, int]:
        b = self.budgets.get(key)
        return (b.spent, b.reserved) if b else (0, 0)
