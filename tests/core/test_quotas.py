"""The rate-limit policy: every bucket a request is charged to must have a token, or none pays."""

from __future__ import annotations

import pytest

from appliance.core.config import LimitsConfig
from appliance.core.errors import RateLimited
from appliance.core.quotas import FrameBudget, Limit, Quotas, limits_of


def test_a_refused_request_costs_no_other_bucket_anything() -> None:
    quotas = Quotas([Limit("chat_per_ip", 3, 60), Limit("chat_per_visitor", 1, 60)])
    quotas.admit(0, ("chat_per_ip", "1.2.3.4"), ("chat_per_visitor", "alice"))
    with pytest.raises(RateLimited) as refused:
        quotas.admit(0, ("chat_per_ip", "1.2.3.4"), ("chat_per_visitor", "alice"))
    assert "chat per visitor: 1 per minute" in str(refused.value)
    assert 59 <= refused.value.retry_after_s <= 60
    quotas.admit(0, ("chat_per_ip", "1.2.3.4"), ("chat_per_visitor", "bob"))
    quotas.admit(0, ("chat_per_ip", "1.2.3.4"), ("chat_per_visitor", "carol"))  # alice's refusal took no IP token
    with pytest.raises(RateLimited):
        quotas.admit(0, ("chat_per_ip", "1.2.3.4"), ("chat_per_visitor", "dave"))
    assert quotas.refused == {"chat_per_ip": 1, "chat_per_visitor": 1}
    quotas.admit(61, ("chat_per_visitor", "alice"))  # refilled


def test_zero_turns_a_limit_off_and_memory_stays_bounded() -> None:
    quotas = Quotas([Limit("uploads_per_ip", 0, 3600), Limit("chat_per_ip", 1, 60)], max_keys=100)
    for n in range(1000):
        quotas.admit(0, ("uploads_per_ip", "x"), ("chat_per_ip", f"10.0.0.{n}"))
    assert quotas.tracked_keys() == 100


def test_every_configured_limit_is_named_after_its_field() -> None:
    limits = {limit.name: limit for limit in limits_of(LimitsConfig())}
    assert limits["chat_per_ip"].window_s == 60 and limits["tickets_per_ip"].window_s == 3600
    assert limits["ws_frames_per_socket"].capacity == 300


def test_a_socket_that_keeps_flooding_becomes_abusive() -> None:
    budget = FrameBudget(2, patience=3)
    assert budget.admit(0) and budget.admit(0)
    assert [budget.admit(0) for _ in range(4)] == [False] * 4
    assert budget.abusive
    assert budget.admit(60) and not budget.abusive
