"""One checked, immutable description of a leader-election session, and Consul's limits.

:class:`ElectionSettings` holds what the recipe's session is made of (TTL, behaviour,
lock-delay, the checks it is bound to) and how often it is renewed.  Its defaults are the
article's configuration (10 s TTL, ``delete``, 15 s lock-delay, renew every TTL/2); every
other module takes these defaults and Consul's limits from here.  Bad values fail when the
object is built, with one message naming the field, before any request is sent.

The limits are Consul's own (sources in ``elect_helpers/devagent/FIDELITY.md`` and the
facts file):

* a session TTL lies between the server's ``session_ttl_min`` (10 s unless lowered) and
  24 h (``structs.SessionTTLMax``); the minimum belongs to the agent, so it can only be
  checked against the agent when the session is created;
* a lock-delay is capped at 60 s (``structs.MaxLockDelay``) when Consul applies it; Consul
  does not refuse a longer one, so neither do we: we say so and keep 60 s;
* a lock-delay below 1 µs is read by Consul as *seconds* (``lockDelayMinThreshold``);
* behaviours are ``release`` and ``delete``;
* check intervals below 1 s are raised to 1 s (``checks.MinInterval``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .durations import HOUR, MICROSECOND, SECOND, seconds_to_go, to_seconds
from .errors import InvalidSetting, LockDelayCapped

# ---- Consul's limits (the only place they are written down) ---------------------------
SESSION_TTL_MAX_NS = 24 * HOUR  # structs.SessionTTLMax
SESSION_TTL_MAX = SESSION_TTL_MAX_NS / SECOND
SESSION_TTL_MIN_DEFAULT_NS = 10 * SECOND  # the server's session_ttl_min unless lowered
SESSION_TTL_MIN_DEFAULT = SESSION_TTL_MIN_DEFAULT_NS / SECOND
LOCK_DELAY_MAX_NS = 60 * SECOND  # structs.MaxLockDelay: applied as min(lock_delay, 60s)
LOCK_DELAY_MAX = LOCK_DELAY_MAX_NS / SECOND
LOCK_DELAY_SECONDS_BELOW_NS = MICROSECOND  # a lock-delay below 1 µs is read as seconds
BEHAVIORS = ("release", "delete")
CHECK_INTERVAL_MIN_NS = SECOND  # checks.MinInterval
CHECK_INTERVAL_MIN = CHECK_INTERVAL_MIN_NS / SECOND

# ---- the article's configuration ------------------------------------------------------
ARTICLE_TTL = 10.0
ARTICLE_BEHAVIOR = "delete"
ARTICLE_LOCK_DELAY = 15.0
ARTICLE_RENEW_FRACTION = 0.5  # renew every TTL/2, as Consul's Go client does
ARTICLE_CHECK_INTERVAL = 10.0


def duration_setting(name: str, value: str | float) -> float:
    """``value`` (Go duration or seconds) in seconds, or :class:`InvalidSetting` naming
    ``name``."""
    if isinstance(value, bool):
        raise InvalidSetting(name, value, "is not a duration; give a Go duration or seconds")
    try:
        return to_seconds(value)
    except (TypeError, ValueError) as exc:
        raise InvalidSetting(
            name, value, f"is not a duration ({exc}); use a Go duration such as 10s or 500ms"
        ) from None


def _check_names(name: str, value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidSetting(name, value, "must be a list of check IDs, not one string")
    names = tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise InvalidSetting(name, value, "must hold non-empty check IDs")
    return names


@dataclass(frozen=True)
class ElectionSettings:
    """A session for leader election, checked against Consul's limits when built.

    Durations may be given as Go strings (``"10s"``) or seconds; they are stored as float
    seconds.  ``node_checks=None`` keeps Consul's default (``["serfHealth"]``);
    ``service_checks`` are check IDs such as ``"service:node01"`` (a critical one
    invalidates the session at once).  ``renew_fraction`` is the share of the TTL between
    two renewals.  These are what the node *asks* Consul for; the agent still decides (it
    refuses a TTL below its ``session_ttl_min``, and binds only passing checks).
    """

    ttl: float = ARTICLE_TTL
    behavior: str = ARTICLE_BEHAVIOR
    lock_delay: float = ARTICLE_LOCK_DELAY
    node_checks: tuple[str, ...] | None = None
    service_checks: tuple[str, ...] = field(default=())
    renew_fraction: float = ARTICLE_RENEW_FRACTION

    def __post_init__(self) -> None:
        ttl = duration_setting("ttl", self.ttl)
        if not 0 < ttl <= SESSION_TTL_MAX:
            raise InvalidSetting(
                "ttl",
                self.ttl,
                "must be above 0 and at most 24h (Consul accepts TTLs from the agent's "
                "session_ttl_min, 10s unless lowered, to 24h)",
            )
        if self.behavior not in BEHAVIORS:
            raise InvalidSetting("behavior", self.behavior, "must be 'delete' or 'release'")
        delay = duration_setting("lock_delay", self.lock_delay)
        if delay < 0:
            raise InvalidSetting("lock_delay", self.lock_delay, "must not be negative")
        if 0 < delay * SECOND < LOCK_DELAY_SECONDS_BELOW_NS:
            raise InvalidSetting(
                "lock_delay",
                self.lock_delay,
                "Consul reads a lock-delay below 1µs as seconds; use 0s or at least 1ms",
            )
        if delay > LOCK_DELAY_MAX:
            warnings.warn(
                f"lock_delay {self.lock_delay!r}: Consul caps lock-delay at 60s, so the "
                "lock stays free for at most 60s; using 60s",
                LockDelayCapped,
                stacklevel=3,
            )
            delay = LOCK_DELAY_MAX
        fraction = self.renew_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise InvalidSetting("renew_fraction", fraction, "must be a number")
        if not 0 < fraction < 1:
            raise InvalidSetting(
                "renew_fraction",
                fraction,
                "must lie strictly between 0 and 1 (the share of the TTL between renewals)",
            )
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "lock_delay", delay)
        object.__setattr__(self, "renew_fraction", float(fraction))
        object.__setattr__(self, "node_checks", _check_names("node_checks", self.node_checks))
        services = _check_names("service_checks", self.service_checks) or ()
        object.__setattr__(self, "service_checks", services)

    @property
    def renew_interval(self) -> float:
        """Seconds between two renewals while all goes well (``ttl * renew_fraction``)."""
        return self.ttl * self.renew_fraction

    @property
    def crash_bound(self) -> float:
        """Consul's bound on a crashed holder's hand-over: 2 x TTL + lock-delay (Consul
        may wait up to twice the TTL before invalidating a session)."""
        return 2 * self.ttl + self.lock_delay

    def with_changes(self, **changes: object) -> ElectionSettings:
        """A copy with some fields changed, checked again."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line for logs: ``ttl 10s, behavior delete, lock-delay 15s``."""
        bound = ", bound to " + ", ".join(self.service_checks) if self.service_checks else ""
        return (
            f"ttl {seconds_to_go(self.ttl)}, behavior {self.behavior}, "
            f"lock-delay {seconds_to_go(self.lock_delay)}{bound}"
        )


ARTICLE = ElectionSettings()
