"""Audit chain benchmark: how fast events are hashed, and how fast a chain verifies.

    .venv/bin/python bench/audit_chain.py [--events 100000]

Pure computation (audit/canonical.py and audit/walk.py, no database): builds a
chain of events shaped like Tollgate's (a policy change with before/after
documents, an address, a user agent), a signed checkpoint every 1000 events,
then walks it as ``manage.py audit_verify`` and ``python -m audit.offline`` do.
The database adds its own read time on top; this is the ceiling the
verification itself sets.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from audit import canonical  # noqa: E402
from audit.walk import Walk  # noqa: E402


def build(count: int) -> list[dict]:
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows, prev = [], canonical.GENESIS
    for seq in range(1, count + 1):
        if seq % 1000 == 0:
            signed_at = canonical.time_text(start + timedelta(seconds=seq))
            message = canonical.checkpoint_message(seq=seq - 1, head_hash=prev, signed_at=signed_at)
            action, after = "audit.checkpoint", {
                "seq": seq - 1, "hash": prev, "signed_at": signed_at, "public_key": public,
                "signature": base64.b64encode(key.sign(message)).decode(),
            }
        else:
            action, after = "budget.set", {"amount_usd": "250.00", "period": "month", "level": "team", "hard": True}
        row = {
            "seq": seq, "prev_hash": prev, "created_at": start + timedelta(seconds=seq), "actor_id": 7,
            "actor_label": "alice", "action": action, "target_type": "governance.budget", "target_id": str(seq),
            "target_label": f"payments budget {seq}", "before": {"amount_usd": "200.00", "period": "month"},
            "after": after, "request_id": f"{seq:032x}", "ip": "10.1.2.3", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        }
        row["hash"] = prev = canonical.event_hash(row)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = build(args.events)
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    walk = Walk()
    for row in rows:
        assert walk.feed(row), walk.problem
    walked = time.perf_counter() - t1
    print(f"events: {args.events}, checkpoints: {walk.checkpoints}")
    print(f"append (hash + sign every 1000th): {args.events / built:,.0f} events/s")
    print(f"verify (rehash, links, signatures): {args.events / walked:,.0f} events/s "
          f"({walked:.2f} s for the chain)")


if __name__ == "__main__":
    main()
