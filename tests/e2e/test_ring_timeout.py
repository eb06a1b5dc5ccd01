"""A ring stage that nobody answers ends by timeout, and then the next stage rings (SPEC §3 step 4).

Extension 600 has a ring timeout of 1 s: its two order-1 phones ring and are never picked up,
so after about 1 s Kamailio cancels them and rings the order-2 phone, which answers. This is
what `ring-sim --json` says: stage 1 the two order-1 phones, stage 2 the order-2 phone, each
ringing for 1 s.
"""

from __future__ import annotations

import json

from tests.e2e import harness
from tests.e2e.conftest import Pbx
from tests.e2e.test_ring_agreement import (
    RING_TIMEOUT,
    Phone,
    Scenario,
    build,
    quoted,
    ring_sim,
    stages_of,
)

NUMBER = "600"
NAME = 'Sales "front" desk'
MIN_WAIT_MS = 800  # the next stage rings only once the ring timeout (1 s) has run out
MAX_WAIT_MS = 3000  # ... and not much later
SAME_STAGE_MS = 75  # phones of one stage get the INVITE together


def test_an_unanswered_stage_rings_the_next_after_the_ring_timeout(pbx: Pbx,
                                                                   captured_passwords):
    scenario = Scenario(number=NUMBER, names={NUMBER: NAME},
                        phones=[Phone(NUMBER, 0, "Generic SIP hardphone", order=1),
                                Phone(NUMBER, 1, "Linphone (no proxy)", order=1),
                                Phone(NUMBER, 2, "Generic SIP hardphone", order=2,
                                      answers=True)])
    secrets = build(pbx, scenario, captured_passwords)
    auth = {f"{p['extension']}:{p['position']}": p["sip_auth_user"]
            for p in json.loads(pbx.mtctl.ok("phone", "list", "--json").stdout)}

    plan = ring_sim(pbx, scenario)
    assert plan["outcome"] == "rings"
    assert stages_of(plan) == [[f"{NUMBER}:0", f"{NUMBER}:1"], [f"{NUMBER}:2"]]
    assert [s["ring_seconds"] for s in plan["stages"]] == [int(RING_TIMEOUT)] * 2
    assert plan["display_name"] == NAME

    phones = {p.key: pbx.sipp.start(f"phone-{p.key.replace(':', '-')}",
                                    "phone_answer.xml" if p.answers else "phone_no_answer.xml",
                                    "-m", "1", life=20)
              for p in scenario.phones}
    online = [(auth[key], secrets[key], pbx.sipp.port_of(sipp)) for key, sipp in phones.items()]
    outcome = harness.register(pbx.sipp, pbx.port, pbx.domain, online)
    assert outcome == {user: "registered" for user, _, _ in online}, \
        (outcome, pbx.kamailio.log_text()[-2000:])
    live = json.loads(pbx.mtctl.ok("ring-sim", NUMBER, "--live", "--json").stdout)
    live.pop("registrations")
    assert live.pop("webcall_session") is None
    assert live == plan, "ring-sim --live disagrees with ring-sim given the same presence"

    result = harness.call(pbx.sipp, pbx.port, pbx.domain, NUMBER, life=15)
    # every phone's scenario ran to its end: INVITE/180/CANCEL/487/ACK or INVITE/200/ACK/BYE
    for key, sipp in phones.items():
        assert pbx.sipp.wait(sipp, timeout=10) == 0, \
            (key, sipp.output()[-2000:], pbx.kamailio.log_text()[-3000:])

    first, second = (f"{NUMBER}:0", f"{NUMBER}:1"), f"{NUMBER}:2"
    invited = {key: harness.invites(sipp) for key, sipp in phones.items()}
    cancelled = {key: harness.cancels(sipp) for key, sipp in phones.items()}
    diagnosis = (invited, cancelled, result.responses, pbx.kamailio.log_text()[-3000:])
    assert all(len(invited[key]) == 1 for key in phones), diagnosis
    assert {key: [user for _, user in invited[key]] for key in phones} \
        == {key: [auth[key]] for key in phones}, diagnosis
    start = min(invited[key][0][0] for key in first)
    assert max(invited[key][0][0] for key in first) - start <= SAME_STAGE_MS, diagnosis

    # stage 1 rang for the ring timeout, then was cancelled; the order-2 phone was not
    for key in first:
        assert [user for _, user in cancelled[key]] == [auth[key]], diagnosis
        assert cancelled[key][0][0] - start >= MIN_WAIT_MS, diagnosis
    assert cancelled[second] == [], diagnosis

    # stage 2 rang only after the ring timeout of stage 1
    waited = invited[second][0][0] - start
    assert MIN_WAIT_MS <= waited <= MAX_WAIT_MS, (waited, diagnosis)

    # the caller was answered by the order-2 phone and saw the extension's display name
    assert result.final == 200, (result.responses, result.output[-2000:])
    pai = f"{quoted(NAME)} <sip:{NUMBER}@{pbx.domain}>"
    shown = [(code, header) for code, header in result.responses if code != 100]
    assert shown and shown[-1] == (200, pai), (pai, shown)
    assert all(header == pai for _, header in shown), (pai, shown)
