"""The sign-in bearer as the data plane checks it: PyJWT once per token, then remembered until it expires."""

from __future__ import annotations

import time

from dataplane.signin import Bearers, bearer_claims, bearer_issue, looks_like_bearer

PEPPER = b"pepper-for-bearer-tests"


def test_it_takes_a_bearer_it_minted_and_refuses_others() -> None:
    bearers = Bearers(PEPPER)
    token = bearer_issue(PEPPER, user_id=7, key_prefix="tg-0123abcd", session="s1")
    assert looks_like_bearer(token) and not looks_like_bearer("tg-0123abcd-secret")
    assert bearers.key_prefix(token, time.time()) == ("tg-0123abcd", "")
    forged = bearer_issue(b"someone else's pepper", user_id=7, key_prefix="tg-0123abcd", session="s1")
    assert bearers.key_prefix(forged, time.time()) == (None, "invalid")
    head, payload, signature = token.split(".")
    assert bearers.key_prefix(f"{head}.{payload}.{signature[::-1]}", time.time()) == (None, "invalid")


def test_a_remembered_bearer_still_expires() -> None:
    bearers = Bearers(PEPPER)
    now = time.time()
    token = bearer_issue(PEPPER, user_id=7, key_prefix="tg-0123abcd", session="s1", ttl=60, now=now)
    assert bearers.key_prefix(token, now)[0] == "tg-0123abcd"
    assert bearers.key_prefix(token, now + 61) == (None, "expired")
    assert bearers.key_prefix(token, now + 62) == (None, "expired")  # not re-admitted once forgotten


def test_claims_name_the_user_the_key_and_the_sign_in() -> None:
    token = bearer_issue(PEPPER, user_id=7, key_prefix="tg-0123abcd", session="s1", ttl=3600)
    claims = bearer_claims(PEPPER, token)
    assert claims is not None
    assert (claims["sub"], claims["kid"], claims["sid"], claims["iss"]) == ("7", "tg-0123abcd", "s1", "tollgate")
    assert claims["exp"] - claims["iat"] == 3600
