"""Verify archived audit parts with no database: ``python -m audit.offline DIR``.

DIR holds the parts as the archive task wrote them (``aws s3 sync
s3://bucket/prefix DIR`` fetches them). Each manifest's signature, each JSONL
file's digest, every event's hash and link, every checkpoint inside, and the
joins between consecutive parts are checked. ``--public-key`` (base64 of the
Ed25519 public key, as ``manage.py audit_verify`` prints beside checkpoints'
key ids) makes the signatures count only from that key; without it the
parts are checked for consistency with whatever key signed them.

Exit status 0 when everything checks, 1 at the first problem.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import canonical
from audit.walk import Walk

FORMAT = "tollgate-audit-archive/1"


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_dir(directory: Path, public_key: str | None = None) -> tuple[bool, str]:
    manifests = []
    for path in sorted(directory.rglob("*.manifest.json")):
        manifests.append((path, json.loads(path.read_text())))
    if not manifests:
        return False, f"no *.manifest.json in {directory}"
    manifests.sort(key=lambda m: int(m[1]["first_seq"]))
    trusted = None
    if public_key:
        trusted = {public_key: Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))}
    events = checkpoints = 0
    previous: dict[str, Any] | None = None
    keys = set()
    for path, manifest in manifests:
        name = path.name
        if manifest.get("format") != FORMAT:
            return False, f"{name}: not a {FORMAT} manifest"
        signer = manifest["public_key"]
        if trusted is not None and signer not in trusted:
            return False, f"{name}: signed by key {canonical.key_id(signer)}, not by the key given"
        try:
            Ed25519PublicKey.from_public_bytes(base64.b64decode(signer)).verify(
                base64.b64decode(manifest["signature"]), manifest_bytes(manifest)
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return False, f"{name}: the manifest's signature is not valid"
        keys.add(canonical.key_id(signer))
        body_path = path.parent / manifest["events_file"]
        if not body_path.exists():
            return False, f"{name}: {manifest['events_file']} is missing"
        body = body_path.read_bytes()
        if hashlib.sha256(body).hexdigest() != manifest["events_sha256"]:
            return False, f"{manifest['events_file']}: its digest is not the one its manifest signed"
        first, last = int(manifest["first_seq"]), int(manifest["last_seq"])
        if previous is not None:
            if first != int(previous["last_seq"]) + 1:
                return False, f"seq {int(previous['last_seq']) + 1}-{first - 1} missing: no part holds them"
            if manifest["prev_hash"] != previous["last_hash"]:
                return False, f"{name}: does not continue from the part before it (seq {previous['last_seq']})"
        walk = Walk(prev_seq=first - 1, prev_hash=manifest["prev_hash"], trusted=trusted)
        for line in body.splitlines():
            if not walk.feed(json.loads(line)):
                p = walk.problem
                return False, f"BROKEN at seq {p.seq} ({p.kind}): {p.detail}"
        if walk.prev_seq != last or walk.prev_hash != manifest["last_hash"] or walk.events != int(manifest["events"]):
            return False, f"{name}: the events end at seq {walk.prev_seq}, the manifest says seq {last}"
        events += walk.events
        checkpoints += walk.checkpoints
        previous = manifest
    first_seq, last_seq = manifests[0][1]["first_seq"], manifests[-1][1]["last_seq"]
    return True, (
        f"archive intact: seq {first_seq}-{last_seq} in {len(manifests)} part(s), {events} event(s), "
        f"{checkpoints} checkpoint(s), signed by key {', '.join(sorted(keys))}; "
        f"the chain continues from hash {manifests[-1][1]['last_hash']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.offline", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="where the archived parts were downloaded")
    parser.add_argument("--public-key", help="the Ed25519 public key (base64) the manifests must be signed with")
    args = parser.parse_args(argv)
    ok, message = verify_dir(args.directory, args.public_key)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
