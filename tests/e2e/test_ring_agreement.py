"""Kamailio running `mtctl export kamailio` rings exactly what `mtctl ring-sim` says.

For the seed's scenarios: SIPp phones register with the keys mtctl made, a SIPp caller dials,
and the phones that receive the INVITE, stage by stage, are the stages of `ring-sim --json`
(given who is registered) and of `ring-sim --live --json` (reading Kamailio's registrations);
the caller sees ring-sim's display name in P-Asserted-Identity. Random stores, with Web Call
pools and sessions: test_pool_agreement.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest

from tests.e2e import harness
from tests.e2e.conftest import Pbx, admin_password
from tests.e2e.recorded import assert_recorded

RING_TIMEOUT = "1"
STAGE_GAP_MS = 75  # phones of one stage get the INVITE together; the next after a 486 (150 ms)
APP_MODELS = ("VIVAit Call Business Android", "VIVAit Call Business iOS")
OTHER_MODELS = ("Generic SIP hardphone", "Linphone (no proxy)", *APP_MODELS)
WEBCALL = "VIVAit Call Web"


@dataclass
class Phone:
    ext: str
    position: int
    model: str
    order: int = 1
    enabled: bool = True
    registered: bool = True
    secure: bool = False
    answers: bool = False

    @property
    def key(self) -> str:
        return f"{self.ext}:{self.position}"

    @property
    def webcall(self) -> bool:
        return self.model == WEBCALL


@dataclass
class Scenario:
    """A store to build, who is registered, and which number is called."""

    number: str
    names: dict[str, str | None] = field(default_factory=dict)  # extension -> display name
    phones: list[Phone] = field(default_factory=list)
    user: dict | None = None  # username, name, mode, webcall_exts, webcall_position
    webcall_ext: str | None = None  # exclusive: the Web Call extension that is running
    answer: bool = False  # one ringing phone answers (the first of the last stage rung)

    @property
    def running(self) -> bool:
        return any(p.webcall and p.registered for p in self.phones)


def build(pbx: Pbx, scenario: Scenario, passwords: list[str]) -> dict[str, str]:
    """Make the store; returns phone key -> password for every phone."""
    mtctl = pbx.mtctl
    mtctl.ok("node", "add", "n1")
    for number, name in scenario.names.items():
        mtctl.ok("ext", "add", number, "--node", "n1", "--ring-timeout", RING_TIMEOUT,
                 *(["--name", name] if name is not None else []))
    secrets: dict[str, str] = {}
    for phone in sorted(scenario.phones, key=lambda p: (p.ext, p.position)):
        args = ["phone", "add", phone.ext, "--position", str(phone.position), "--model",
                phone.model, "--order", str(phone.order)]
        if not phone.enabled:
            args.append("--disabled")
        if phone.secure:
            before = len(passwords)
            mtctl.ok(*args, "--secure")
            assert len(passwords) == before + 1
            secrets[phone.key] = passwords[-1]
        else:
            mtctl.ok(*args)
            secrets[phone.key] = admin_password()
            mtctl.ok("phone", "set-password", phone.ext, str(phone.position),
                     "--password-stdin", input=secrets[phone.key] + "\n")
    if scenario.user:
        u = scenario.user
        args = ["user", "add", u["username"], "--name", u["name"], "--login", scenario.number]
        if u.get("mode"):
            args += ["--webcall-mode", u["mode"]]
        for number in u.get("webcall_exts", ()):
            args += ["--webcall-ext", number]
        if u.get("webcall_position") is not None:
            args += ["--webcall-position", str(u["webcall_position"])]
        mtctl.ok(*args)
    return secrets


def ring_sim(pbx: Pbx, scenario: Scenario) -> dict:
    """What ring-sim says, told who is registered and whether Web Call runs."""
    args = ["ring-sim", scenario.number, "--json"]
    args += [a for p in scenario.phones if not p.registered for a in ("--offline", p.key)]
    if scenario.running:
        args.append("--webcall-running")
    if scenario.webcall_ext:
        args += ["--webcall-ext", scenario.webcall_ext]
    return json.loads(pbx.mtctl.ok(*args).stdout)


def stages_of(plan: dict) -> list[list[str]]:
    return [[f"{p['extension']}:{p['position']}" for p in s["phones"]] for s in plan["stages"]]


def clusters(invited: list[tuple[float, str]]) -> list[set[str]]:
    """INVITEs grouped into stages by the pause between stages."""
    groups: list[set[str]] = []
    last = None
    for tick, user in sorted(invited):
        if last is None or tick - last > STAGE_GAP_MS:
            groups.append(set())
        groups[-1].add(user)
        last = tick
    return groups


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_scenario(pbx: Pbx, scenario: Scenario, passwords: list[str]) -> None:
    secrets = build(pbx, scenario, passwords)
    auth = {f"{p['extension']}:{p['position']}": p["sip_auth_user"]
            for p in json.loads(pbx.mtctl.ok("phone", "list", "--json").stdout)}
    plan = ring_sim(pbx, scenario)
    expected = stages_of(plan)
    answerer = None
    if scenario.answer and expected:
        answerer = expected[-1][0]
        for phone in scenario.phones:
            phone.answers = phone.key == answerer

    # one SIPp per phone: forked branches share the Call-ID, so one process cannot be two phones
    phones = {p.key: pbx.sipp.start(f"phone-{p.key.replace(':', '-')}",
                                    "phone_answer.xml" if p.answers else "phone_busy.xml",
                                    "-m", "1", life=30)
              for p in scenario.phones if p.registered}
    online = [(auth[key], secrets[key], pbx.sipp.port_of(sipp)) for key, sipp in phones.items()]
    outcome = harness.register(pbx.sipp, pbx.port, pbx.domain, online)
    assert outcome == {user: "registered" for user, _, _ in online}, \
        (outcome, pbx.kamailio.log_text()[-2000:])

    live = json.loads(pbx.mtctl.ok("ring-sim", scenario.number, "--live", "--json").stdout)
    held = {f"{r['extension']}:{r['position']}": r["node"] for r in live.pop("registrations")}
    assert live.pop("webcall_session") is None  # no scenario starts a session
    ringing = {key for stage in expected for key in stage}
    assert ringing <= set(held) <= set(phones), held  # the single proxy names no node:
    assert set(held.values()) <= {None}, held
    assert live == plan, "ring-sim --live disagrees with ring-sim given the same presence"

    started = time.time() * 1000
    result = harness.call(pbx.sipp, pbx.port, pbx.domain, scenario.number)
    reached = {user: key for key, user in auth.items()}
    invited = [(ms, user) for sipp in phones.values() for ms, user in harness.invites(sipp)]
    observed = [{reached[u] for u in group} for group in clusters(invited)]
    assert observed == [set(stage) for stage in expected], \
        (expected, observed, result.responses)
    assert_recorded(pbx.mtctl, scenario.number, started, observed)

    final = 200 if answerer else 486 if expected else 480
    assert result.final == final, (result.responses, result.output[-2000:])
    pai = f"{quoted(plan['display_name'])} <sip:{scenario.number}@{pbx.domain}>"
    shown = [(code, header) for code, header in result.responses if code != 100]
    assert shown and all(header == pai for _, header in shown), (pai, shown)


# --- the seed's scenarios -----------------------------------------------------------------

def seed_multiterminal(running: bool, answer: bool) -> Scenario:
    """Ana on 40710: desk phone at 0, Web Call at 1, mobile app at 2 in a later stage."""
    return Scenario(
        number="40710", names={"40710": "Desk 40710"},
        phones=[Phone("40710", 0, "Cisco 8841"),
                Phone("40710", 1, WEBCALL, registered=running),
                Phone("40710", 2, "VIVAit Call Business Android", order=3, secure=True),
                Phone("40710", 3, "Generic SIP hardphone", order=0)],
        user={"username": "ana", "name": "Ana García", "mode": "multiterminal",
              "webcall_position": 1},
        answer=answer)


def seed_exclusive(running: bool) -> Scenario:
    """Ana logs in with 40710 (desk phone) and has her own Web Call extension 40711."""
    return Scenario(
        number="40710", names={"40710": "Desk 40710", "40711": None},
        phones=[Phone("40710", 0, "Cisco 8841"),
                Phone("40710", 1, "Linphone (no proxy)", order=2),
                Phone("40711", 0, WEBCALL, registered=running)],
        user={"username": "ana", "name": 'Ana "La Jefa" \\ García', "mode": "exclusive",
              "webcall_exts": ["40711"]},
        webcall_ext="40711" if running else None)


def seed_plain() -> Scenario:
    """A plain extension: disabled and unregistered phones never ring."""
    return Scenario(
        number="40800", names={"40800": 'Reception "front"'},
        phones=[Phone("40800", 0, "Generic SIP hardphone"),
                Phone("40800", 1, "Linphone (no proxy)", enabled=False),
                Phone("40800", 2, "VIVAit Call Business iOS", order=2, registered=False),
                Phone("40800", 4, "Linphone (no proxy)", order=5)])


def seed_silent() -> Scenario:
    return Scenario(number="40900", names={"40900": None},
                    phones=[Phone("40900", 0, "Generic SIP hardphone", registered=False),
                            Phone("40900", 1, "Linphone (no proxy)", order=0)])


SEEDS = {
    "multiterminal-webcall-running": lambda: seed_multiterminal(True, False),
    "multiterminal-webcall-off-answered": lambda: seed_multiterminal(False, True),
    "exclusive-webcall-running": lambda: seed_exclusive(True),
    "exclusive-webcall-off": lambda: seed_exclusive(False),
    "plain-extension": seed_plain,
    "silent": seed_silent,
}


@pytest.mark.parametrize("name", list(SEEDS))
def test_seed_scenarios_ring_as_ring_sim_says(pbx, captured_passwords, name):
    run_scenario(pbx, SEEDS[name](), captured_passwords)

# Random stores (several users sharing Web Call pools, sessions changing between calls):
# test_pool_agreement.py.
