"""Personal data out of traces and logs: e-mail addresses, phone numbers, payment card numbers,
Chinese resident ID numbers and IBANs become ``[email]``, ``[phone]``, ``[card]``, ``[id]`` and
``[iban]``.

Numbers are recognised by their shape and, where they have one, their check digit (Luhn for
cards, ISO 7064 for ID numbers, mod 97 for IBANs), so order numbers, dates, times and prices
stay as they are. Phone numbers are taken when they cannot be much else: with a ``+``/``00``
country code, a Chinese mobile number (``1[3-9]`` and nine digits), a Chinese landline with its
area code (``010-12345678``) or a North American number written with separators. An 11-digit
order number that starts like a Chinese mobile number is taken for one.

Used by ``[privacy] redact_pii`` (decision traces and the server log) and by the
``pii_redaction`` middleware (what the models see).
"""

from __future__ import annotations

import logging
import re

import msgspec

from appliance.core.types import Trace

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_CN_ID = re.compile(
    r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
)
# Card numbers as printed: in one run, in groups of four, or Amex's 4-6-5; starting like a card
# network's number (Visa 4, Mastercard 51-55 and 22-27, Amex 34/37, Diners 30/36/38, JCB 35,
# Discover/UnionPay/Maestro 6), so that "2024..." timestamps are not candidates.
_CARD = re.compile(
    r"(?<![\d+.,\-])(?=4|5[1-5]|2[2-7]|3[0-8]|6)"
    r"(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{5})"
    r"(?![\d]|[.,-]\d)"
)
_CN_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
_INTERNATIONAL = re.compile(r"(?<![\w+])(?<!\d[ .-])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\d])")
_CN_LANDLINE = re.compile(r"(?<![\d-])0\d{2,3}-\d{7,8}(?![\d-])")
_NANP = re.compile(r"(?<![\d-])(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}(?![\d-])")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def redact(text: str) -> str:
    """``text`` with personal numbers and addresses replaced by placeholders."""
    if not text:
        return text
    text = _EMAIL.sub("[email]", text)
    text = _IBAN.sub(lambda m: "[iban]" if _iban_ok(m.group()) else m.group(), text)
    text = _CN_ID.sub(lambda m: "[id]" if _cn_id_ok(m.group()) else m.group(), text)
    text = _CARD.sub(lambda m: "[card]" if _luhn_ok(_digits(m.group())) else m.group(), text)
    text = _CN_MOBILE.sub("[phone]", text)
    text = _INTERNATIONAL.sub(lambda m: "[phone]" if 8 <= len(_digits(m.group())) <= 15 else m.group(), text)
    text = _CN_LANDLINE.sub("[phone]", text)
    return _NANP.sub("[phone]", text)


def redact_trace(trace: Trace) -> None:
    """Redact every text a visitor, a document or a tool put into ``trace`` (in place); ids,
    scores and timings are left alone."""
    trace.text = redact(trace.text)
    trace.handoff_reason = redact(trace.handoff_reason)
    trace.fallbacks = [redact(line) for line in trace.fallbacks]
    for call in trace.tool_calls:
        call.arguments, call.result, call.error = redact(call.arguments), redact(call.result), redact(call.error)
    for attempt in trace.attempts:
        attempt.error = redact(attempt.error)
    trace.chunks = [msgspec.structs.replace(c, text=redact(c.text), answer=redact(c.answer)) for c in trace.chunks]


class RedactingFilter(logging.Filter):
    """Redacts each record's message, exception and stack text before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed call: logging reports it as it would without the filter
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction() -> RedactingFilter:
    """Put a :class:`RedactingFilter` on the root logger's handlers (which every propagating
    record passes) and on every logger that exists now (a server's own loggers that do not
    propagate, such as uvicorn's, are created when it is imported)."""
    redacting = RedactingFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.addFilter(redacting)
    return redacting


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _luhn_ok(digits: str) -> bool:
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _cn_id_ok(number: str) -> bool:
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
