"""settings: one checked, immutable ElectionSettings; Consul's limits defined once."""

from __future__ import annotations

import dataclasses

import pytest

from elect_helpers import session, settings
from elect_helpers.devagent import api_session, sessions, state
from elect_helpers.errors import InvalidArgument, InvalidSetting, LockDelayCapped
from elect_helpers.settings import ARTICLE, ElectionSettings


def test_the_article_defaults_and_what_follows_from_them() -> None:
    assert (ARTICLE.ttl, ARTICLE.behavior, ARTICLE.lock_delay) == (10.0, "delete", 15.0)
    assert (ARTICLE.renew_fraction, ARTICLE.renew_interval) == (0.5, 5.0)
    assert ARTICLE.crash_bound == 35.0
    assert ARTICLE.node_checks is None and ARTICLE.service_checks == ()
    assert ElectionSettings(ttl="1.5s", lock_delay="500ms").ttl == 1.5
    assert ARTICLE.describe() == "ttl 10s, behavior delete, lock-delay 15s"


def test_it_is_immutable_and_with_changes_checks_again() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ARTICLE.ttl = 1.0  # type: ignore[misc]
    assert ARTICLE.with_changes(ttl="2s").ttl == 2.0
    with pytest.raises(InvalidSetting, match=r"^ttl '0s'"):
        ARTICLE.with_changes(ttl="0s")


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        ({"ttl": "0s"}, "ttl", "must be above 0 and at most 24h"),
        ({"ttl": "25h"}, "ttl", "at most 24h"),
        ({"ttl": "10"}, "ttl", "missing unit"),
        ({"ttl": True}, "ttl", "is not a duration"),
        ({"behavior": "keep"}, "behavior", "must be 'delete' or 'release'"),
        ({"lock_delay": "-1s"}, "lock_delay", "must not be negative"),
        ({"lock_delay": "500ns"}, "lock_delay", "below 1µs as seconds"),
        ({"renew_fraction": 1.0}, "renew_fraction", "strictly between 0 and 1"),
        ({"renew_fraction": 0}, "renew_fraction", "strictly between 0 and 1"),
        ({"renew_fraction": "half"}, "renew_fraction", "must be a number"),
        ({"service_checks": "service:n1"}, "service_checks", "not one string"),
        ({"node_checks": [""]}, "node_checks", "non-empty check IDs"),
    ],
)
def test_bad_settings_fail_at_construction_naming_the_field(given, field, says) -> None:
    with pytest.raises(InvalidSetting, match=says) as info:
        ElectionSettings(**given)
    assert info.value.field == field and str(info.value).startswith(f"{field} ")
    assert isinstance(info.value, InvalidArgument) and "\n" not in str(info.value)


def test_a_lock_delay_over_60s_is_capped_as_consul_does_and_said() -> None:
    with pytest.warns(LockDelayCapped, match="caps lock-delay at 60s"):
        capped = ElectionSettings(lock_delay="90s")
    assert capped.lock_delay == 60.0


def test_consuls_limits_are_defined_once_and_the_dev_agent_uses_them() -> None:
    assert state.SESSION_TTL_MAX_NS is settings.SESSION_TTL_MAX_NS
    assert sessions.LOCK_DELAY_MAX_NS is settings.LOCK_DELAY_MAX_NS
    assert api_session.LOCK_DELAY_SECONDS_BELOW_NS is settings.LOCK_DELAY_SECONDS_BELOW_NS
    assert session.SESSION_TTL_MAX is settings.SESSION_TTL_MAX == 86400.0
