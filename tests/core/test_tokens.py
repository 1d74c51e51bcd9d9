from __future__ import annotations

import pytest

from appliance.core.errors import AuthError
from appliance.core.tokens import VisitorTokens, hash_password, verify_password


def test_visitor_token_round_trip_expiry_and_forgery() -> None:
    tokens = VisitorTokens(b"s" * 32, ttl_s=60)
    token = tokens.issue("vis_1", now_s=1000)
    assert tokens.verify(token, now_s=1059) == "vis_1"
    with pytest.raises(AuthError, match="expired"):
        tokens.verify(token, now_s=1061)
    body, _, signature = token.partition(".")
    other = VisitorTokens(b"t" * 32, ttl_s=60).issue("vis_2", now_s=1000)
    for forged in (f"{other.partition('.')[0]}.{signature}", f"{body}.{signature[:-1]}A", "garbage", "",
                   f"{body}.{signature[:-1]}é", "访客.令牌"):
        with pytest.raises(AuthError, match="invalid"):
            tokens.verify(forged, now_s=1000)


def test_passwords() -> None:
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("x", "plain")
