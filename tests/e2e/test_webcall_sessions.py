"""A shared Web Call pool no longer sends one user's calls to another user's browser.

The issue's store: Ana (100) and Bea (200) are exclusive users of pool group `pool`; Bea is
logged into the pool's browser on 900. Calling Ana must ring Ana's desk phone — in Kamailio,
in `ring-sim --live` and in plain `ring-sim` — until Ana starts her own Web Call session (on
901) and its browser registers; then only 901 rings, showing "Ana García".
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Pbx
from tests.e2e.pools import Store, User, bring_online, build_store, call_agrees, ring_sim
from tests.e2e.test_ring_agreement import WEBCALL, Phone, stages_of


def issue_store(pool: list[str]) -> Store:
    return Store(
        names={"100": "Desk Ana", "200": "Desk Bea", "900": None, "901": None},
        phones=[Phone("100", 0, "Generic SIP hardphone"),
                Phone("200", 0, "Generic SIP hardphone"),
                Phone("900", 0, WEBCALL),
                Phone("901", 0, WEBCALL, registered=False)],
        pool=pool,
        users=[User("ana", "Ana García", "100", "exclusive", group=True),
               User("bea", "Bea Ruiz", "200", "exclusive", group=True)])


@pytest.mark.parametrize("pool", [["900"], ["900", "901"]], ids=["pool-900", "pool-900-901"])
def test_a_pool_browser_rings_only_for_the_user_logged_in_there(pbx: Pbx, pool):
    store = issue_store(pool)
    if "901" not in pool:  # the issue's store: 901 is Ana's own extension in the variant only
        store.users[0].own = ["901"]
    secrets = build_store(pbx, store, later=("901:0",))
    pbx.mtctl.ok("webcall", "start", "bea", "--ext", "900")
    store.sessions["bea"] = "900"
    online = bring_online(pbx, store, secrets)

    plan = call_agrees(pbx, store, online, "100")
    assert stages_of(plan) == [["100:0"]], "Ana's calls must ring her desk, not Bea's browser"
    assert stages_of(ring_sim(pbx, "100")) == [["100:0"]]  # plain ring-sim agrees
    assert stages_of(call_agrees(pbx, store, online, "200")) == [["900:0"]]

    # Ana logs into 901: nothing changes until its browser registers
    pbx.mtctl.ok("webcall", "start", "ana", "--ext", "901")
    store.sessions["ana"] = "901"
    assert stages_of(call_agrees(pbx, store, online, "100")) == [["100:0"]]
    browser = next(p for p in store.phones if p.key == "901:0")
    browser.registered = True
    bring_online(pbx, store, secrets, phones=[browser], online=online)
    plan = call_agrees(pbx, store, online, "100")
    assert stages_of(plan) == [["901:0"]]
    assert plan["display_name"] == "Ana García"
    assert plan["webcall_running"] is True
    assert ring_sim(pbx, "100", "--webcall-running", "--webcall-ext", "901") == plan

    # Bea logs out: her calls ring her desk again; Ana's still ring her browser
    pbx.mtctl.ok("webcall", "stop", "bea")
    del store.sessions["bea"]
    assert stages_of(call_agrees(pbx, store, online, "200")) == [["200:0"]]
    assert stages_of(call_agrees(pbx, store, online, "100")) == [["901:0"]]
