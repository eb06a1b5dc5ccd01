"""Registrations mean the same whatever the time zones of Kamailio, the database and mtctl.

Kamailio used to write `location.expires` in its host's local time into a column without time
zone: with Kamailio at America/New_York and PostgreSQL at UTC, `ring-sim --live` said "not
registered" while Kamailio rang the phone. Now usrloc writes epoch seconds; this test runs
Kamailio under three time zones and reads with mtctl under three more (TZ, and PGTZ for its
PostgreSQL session).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import Pbx
from tests.e2e.pools import Store, bring_online, build_store, call_agrees, ring_sim
from tests.e2e.test_ring_agreement import Phone, stages_of

ZONES = ("America/New_York", "Asia/Tokyo", "Europe/Madrid")
EXPIRES = 300  # the Expires of scenarios/register.xml
SLACK = 10  # seconds between the REGISTER and our reading of the clock


def location_rows(url: str) -> dict[str, tuple[int, int]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {user: (int(expires), int(modified)) for user, expires, modified in
                    conn.execute(text("SELECT username, expires, last_modified FROM location"))}
    finally:
        engine.dispose()


def plant_registration(url: str, auth_user: str, expires: int) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM location WHERE username = :u"), {"u": auth_user})
            conn.execute(text(
                "INSERT INTO location (ruid, username, contact, expires, last_modified, "
                "user_agent) VALUES (:r, :u, :c, :e, :m, 'planted')"),
                {"r": f"planted-{auth_user}-{expires}", "u": auth_user, "e": expires,
                 "c": f"sip:{auth_user}@192.0.2.1:5060", "m": int(time.time())})
    finally:
        engine.dispose()


@pytest.fixture(params=ZONES)
def kamailio_env(request) -> dict[str, str]:
    return {"TZ": request.param}


@pytest.fixture
def mtctl_zone() -> Iterator[Callable[[str], None]]:
    """Set mtctl's time zone (TZ, and PGTZ for its PostgreSQL session); restored after."""
    saved = {name: os.environ.get(name) for name in ("TZ", "PGTZ")}

    def set_zone(zone: str) -> None:
        os.environ["TZ"] = os.environ["PGTZ"] = zone
        time.tzset()

    try:
        yield set_zone
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        time.tzset()


def test_live_registrations_do_not_depend_on_any_time_zone(pbx: Pbx, kamailio_env,
                                                           mtctl_zone):
    store = Store(names={"300": "Front desk"},
                  phones=[Phone("300", 0, "Generic SIP hardphone"),
                          Phone("300", 1, "Linphone (no proxy)", registered=False)])
    secrets = build_store(pbx, store)
    online = bring_online(pbx, store, secrets)

    # what Kamailio (in its zone) wrote is epoch seconds: now + Expires, and now
    now = time.time()
    expires, modified = location_rows(pbx.mtctl.url)["300-0"]
    assert abs(expires - (now + EXPIRES)) < SLACK, (kamailio_env, expires, now)
    assert abs(modified - now) < SLACK, (kamailio_env, modified, now)

    for zone in ("UTC", *ZONES):
        mtctl_zone(zone)
        plan = call_agrees(pbx, store, online, "300")  # Kamailio rings it; --live agrees
        assert stages_of(plan) == [["300:0"]], zone
        shown = pbx.mtctl.ok("ring-sim", "300", "--live", "--format", "table").stdout
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(modified))
        assert stamp in " ".join(shown.split()), (zone, shown)

        # an expired registration never counts, a live one does, in every zone
        plant_registration(pbx.mtctl.url, "300-1", int(time.time()) - 5)
        assert stages_of(ring_sim(pbx, "300", "--live")) == [["300:0"]], zone
        plant_registration(pbx.mtctl.url, "300-1", int(time.time()) + 60)
        assert stages_of(ring_sim(pbx, "300", "--live")) == [["300:0", "300:1"]], zone
        plant_registration(pbx.mtctl.url, "300-1", int(time.time()) - 5)
