"""PII redaction for traces and logs, in English and Chinese text, without eating order numbers,
dates or prices."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from appliance.core.redaction import RedactingFilter, install_log_redaction, redact, redact_trace
from appliance.core.types import Attempt, ChunkHit, ToolCall, Trace


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the Luhn check digit: a card number that passes the check."""
    for check in "0123456789":
        digits = prefix + check
        total = 0
        for index, char in enumerate(reversed(digits)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


UNIONPAY = luhn_complete("622202123456789012")  # 19 digits
VISA = luhn_complete("411111111111111")
CN_ID = "11010519491231002X"  # the standard's example number (checksum X)


@pytest.mark.parametrize(("text", "redacted"), [
    ("Write to jane.doe+help@example.co.uk please", "Write to [email] please"),
    ("Call me on +44 20 7946 0958 or +1 (415) 555-2671.", "Call me on [phone] or [phone]."),
    ("My US number is (415) 555-2671, office 415-555-2672", "My US number is [phone], office [phone]"),
    (f"Card {VISA[:4]} {VISA[4:8]} {VISA[8:12]} {VISA[12:]} expires 12/27", "Card [card] expires 12/27"),
    (f"card number {VISA}, amex 3782 822463 10005", "card number [card], amex [card]"),
    ("IBAN DE89 3704 0044 0532 0130 00, or GB82WEST12345698765432.", "IBAN [iban], or [iban]."),
])
def test_english_personal_data_is_replaced(text: str, redacted: str) -> None:
    assert redact(text) == redacted


@pytest.mark.parametrize(("text", "redacted"), [
    ("我的手机号是13812345678，请回电。", "我的手机号是[phone]，请回电。"),
    ("电话：138 1234 5678 或 +86 139-1234-5678", "电话：[phone] 或 [phone]"),
    ("邮箱zhang.san@163.com，座机010-12345678", "邮箱[email]，座机[phone]"),
    (f"身份证号{CN_ID}，银行卡{UNIONPAY}。", "身份证号[id]，银行卡[card]。"),
    (f"身份证 {CN_ID.lower()} 已核验", "身份证 [id] 已核验"),
])
def test_chinese_personal_data_is_replaced(text: str, redacted: str) -> None:
    assert redact(text) == redacted


@pytest.mark.parametrize("text", [
    "Order #1234567890 of 2024-05-01 costs $12,345.67; ticket ORD-88231, 3 items, at 12:30.",
    "Order 98765432101234 shipped 2024/05/01; invoice INV-2024-000123; total 1,234,567.89 USD.",
    "订单号 20240501123456，金额 ¥1,299.00，下单时间 2024-05-01 12:30，运单号 SF1234567890123。",
    "邮编 100080，分机 12345，价格 299.99 元，2024年5月1日到期，版本 3.11.7。",
    f"Not a card: {VISA[:-1]}{(int(VISA[-1]) + 1) % 10}",  # the Luhn check fails
    "身份证号 110105194912310021 的校验位不对",  # the ID checksum fails
    "IBAN DE00 3704 0044 0532 0130 00 is mistyped",  # mod 97 fails
    "timestamp 20240501123045123 and build 1718291822",
])
def test_order_numbers_dates_and_prices_are_not_redacted(text: str) -> None:
    assert redact(text) == text


def test_a_trace_is_redacted_where_text_comes_from_visitors_documents_and_tools() -> None:
    trace = Trace(
        trace_id="tr_4111111111111111abcdef01", conversation_id="conv_1", text="my email is a@b.example",
        chunks=[ChunkHit(chunk_id="c1", document="contacts.md", text="Call +44 20 7946 0958", score=0.9)],
        tool_calls=[ToolCall(name="lookup", arguments='{"phone": "13812345678"}', result=f"ID {CN_ID}",
                             error="")],
        attempts=[Attempt(provider="up", status="error", error="rejected a@b.example")],
        fallbacks=["tool said 13812345678"], handoff_reason="visitor a@b.example asked",
    )
    redact_trace(trace)
    assert trace.text == "my email is [email]"
    assert trace.chunks[0].text == "Call [phone]" and trace.chunks[0].score == 0.9
    assert trace.tool_calls[0].arguments == '{"phone": "[phone]"}' and trace.tool_calls[0].result == "ID [id]"
    assert trace.attempts[0].error == "rejected [email]"
    assert trace.fallbacks == ["tool said [phone]"] and trace.handoff_reason == "visitor [email] asked"
    assert trace.trace_id == "tr_4111111111111111abcdef01"  # ids are not personal data


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)
    logger.filters.clear()


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = captured
    logger.addFilter(RedactingFilter())
    logger.warning("visitor %s wrote from %s", "jane@example.com", "+86 138 1234 5678")
    try:
        raise ValueError(f"bad card {VISA}")
    except ValueError:
        logger.exception("turn failed for 用户 13812345678")
    text = out.getvalue()
    assert "WARNING visitor [email] wrote from [phone]" in text
    assert "turn failed for 用户 [phone]" in text and "ValueError: bad card [card]" in text
    assert "jane@example.com" not in text and VISA not in text and "13812345678" not in text


def test_install_covers_the_root_handlers_and_existing_loggers() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    quiet = logging.getLogger("tests.redaction.quiet")  # like uvicorn's: own handler, no propagation
    quiet_out = io.StringIO()
    quiet_handler = logging.StreamHandler(quiet_out)
    quiet.addHandler(quiet_handler)
    quiet.propagate = False
    root.addHandler(handler)
    try:
        installed = install_log_redaction()
        logging.getLogger("appliance.somewhere.new").error("mail jane@example.com")
        quiet.error("card %s", VISA)
    finally:
        root.removeHandler(handler)
        quiet.removeHandler(quiet_handler)
        for logger in [root, *logging.Logger.manager.loggerDict.values()]:
            if isinstance(logger, logging.Logger):
                logger.removeFilter(installed)
        handler.removeFilter(installed)
    assert out.getvalue() == "mail [email]\n"
    assert quiet_out.getvalue() == "card [card]\n"
