"""Go-style durations, as Consul reads and prints them.

Consul parses every duration it accepts over HTTP (``TTL``, ``LockDelay``, ``wait``,
check ``Interval``...) with Go's ``time.ParseDuration`` and prints limits with
``time.Duration.String()``.  Both the embedded dev agent and the client helpers need the
exact same rules, so they live here, in integer nanoseconds like Go's ``time.Duration``.
"""

from __future__ import annotations

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_MAX_NS = 2**63 - 1


class DurationError(ValueError):
    """A string that Go's ``time.ParseDuration`` would reject; the message is Go's."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_duration(text: str) -> int:
    """Parse a Go duration string such as ``"10s"``, ``"1m30s"`` or ``"250ms"``.

    Returns integer nanoseconds.  Raises :class:`DurationError` with the message Go gives
    (``time: missing unit in duration "15"`` and so on) for anything Go would reject.
    """
    original = text
    invalid = DurationError("time: invalid duration " + _quote(original))
    negative = False
    if text[:1] in ("-", "+"):
        negative = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise invalid
    total = 0.0
    exact = 0
    while text:
        if not (text[0].isdigit() or text[0] == "."):
            raise invalid
        i = 0
        while i < len(text) and text[i].isascii() and text[i].isdigit():
            i += 1
        whole = text[:i]
        text = text[i:]
        fraction = ""
        if text.startswith("."):
            text = text[1:]
            j = 0
            while j < len(text) and text[j].isascii() and text[j].isdigit():
                j += 1
            fraction = text[:j]
            text = text[j:]
        if not whole and not fraction:
            raise invalid
        k = 0
        while k < len(text) and text[k] not in ".0123456789":
            k += 1
        unit_name = text[:k]
        text = text[k:]
        if not unit_name:
            raise DurationError("time: missing unit in duration " + _quote(original))
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                "time: unknown unit " + _quote(unit_name) + " in duration " + _quote(original)
            )
        exact += int(whole or "0") * unit
        if fraction:
            total += int(fraction) * unit / (10 ** len(fraction))
        if exact > _MAX_NS:
            raise invalid
    result = exact + int(total)
    if result > _MAX_NS:
        raise invalid
    return -result if negative else result


def _with_fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if rest == 0:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + str(rest).rjust(digits, "0").rstrip("0")


def format_duration(ns: int) -> str:
    """Print nanoseconds the way Go's ``time.Duration.String()`` does.

    ``format_duration(10 * SECOND) == "10s"``, ``format_duration(24 * HOUR) == "24h0m0s"``,
    ``format_duration(250 * MILLISECOND) == "250ms"``.
    """
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    value = abs(ns)
    if value < MICROSECOND:
        return f"{sign}{value}ns"
    if value < MILLISECOND:
        return f"{sign}{_with_fraction(value, MICROSECOND)}\u00b5s"
    if value < SECOND:
        return f"{sign}{_with_fraction(value, MILLISECOND)}ms"
    hours, rest = divmod(value, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds = _with_fraction(rest, SECOND) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def to_seconds(value: str | float | int) -> float:
    """Accept ``"10s"``-style strings or plain numbers of seconds; return float seconds."""
    if isinstance(value, str):
        return parse_duration(value) / SECOND
    return float(value)


def seconds_to_go(seconds: float) -> str:
    """Format float seconds as a Go duration string Consul accepts (``"10s"``, ``"1.5s"``)."""
    return format_duration(round(seconds * SECOND))
