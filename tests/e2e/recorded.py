"""The proxy's own record of a call, checked against what the SIPp phones saw: `calls show`
lists exactly the branches that reached a phone, stage by stage, and `calls explain` finds no
divergence between the proxy and the plan of that moment."""

from __future__ import annotations

import json
import time

from tests.conftest import Mtctl


def recorded_call(mtctl: Mtctl, number: str, started_ms: float) -> dict:
    """The newest recorded call to NUMBER placed after STARTED_MS, once it has its outcome
    (the recorder writes every 100 ms)."""
    deadline = time.monotonic() + 5
    while True:
        calls = json.loads(mtctl.ok("calls", "list", number, "--since", "1h",
                                    "--json").stdout)
        mine = [c for c in calls if _ms(c["started_at"]) >= started_ms - 50]
        if mine and mine[0]["outcome"] is not None:
            return mine[0]
        assert time.monotonic() < deadline, ("no recorded outcome", number, calls[:3])
        time.sleep(0.1)


def _ms(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() * 1000


def assert_recorded(mtctl: Mtctl, number: str, started_ms: float,
                    observed: list[set[str]]) -> None:
    """`calls show` lists exactly the OBSERVED stages (sets of EXT:POS that got the INVITE),
    and `calls explain` flags no divergence."""
    call = recorded_call(mtctl, number, started_ms)
    shown = json.loads(mtctl.ok("calls", "show", call["call_id"], "--json").stdout)
    stages: dict[int, set[str]] = {}
    for branch in shown["branches"]:
        stages.setdefault(branch["stage"], set()).add(
            f"{branch['extension']}:{branch['position']}")
    assert [stages[s] for s in sorted(stages)] == observed, (number, shown, observed)
    assert sorted(stages) == list(range(1, len(observed) + 1))
    explained = json.loads(mtctl.ok("calls", "explain", call["call_id"], "--json").stdout)
    assert explained["divergences"] == [], (number, explained)
