"""The example scripts build the seed's walkthroughs; ring-sim shows what their headers say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"

# What each script's header comment documents for `mtctl ring-sim 40710 [--webcall-running]`:
# {running: (stages, skipped, display name)}.
DOCUMENTED = {
    "exclusive.sh": {
        False: ([(1, ["40710:0"])], [("40711:0", "webcall-not-running")], "Ana García"),
        True: ([(1, ["40711:0"])], [("40710:0", "exclusive-webcall-active")], "Ana García"),
    },
    "multiterminal.sh": {
        False: ([(1, ["40710:0"])], [("40710:1", "webcall-not-running")], "Desk 40710"),
        True: ([(1, ["40710:0", "40710:1"])], [], "Ana García"),
    },
    "portal.sh": {
        False: ([(3, ["40710:2"])], [("40710:0", "order-zero"), ("40710:1", "order-zero")],
                "Ana 40710"),
        True: ([(3, ["40710:2"])], [("40710:0", "order-zero"), ("40710:1", "order-zero")],
               "Ana 40710"),
    },
}


def shell_env(url: str) -> dict[str, str]:
    """The environment of a shell where this venv's mtctl comes first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MTCTL_DATABASE_URL"] = url
    env.pop("NO_COLOR", None)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Our own scripts and the venv's mtctl, never outside input.
    return subprocess.run(args, env=env, capture_output=True, text=True,  # noqa: S603
                          timeout=120, check=False)


def stages(plan: dict) -> list[tuple[int, list[str]]]:
    return [(s["order"], [f"{p['extension']}:{p['position']}" for p in s["phones"]])
            for s in plan["stages"]]


def skipped(plan: dict) -> list[tuple[str, str]]:
    return [(f"{s['extension']}:{s['position']}", s["reason"]) for s in plan["skipped"]]


@pytest.mark.parametrize("script", sorted(DOCUMENTED))
def test_example_script_builds_what_its_header_documents(script, empty_url):
    env = shell_env(empty_url)
    built = run(["bash", str(EXAMPLES / script)], env)
    assert built.returncode == 0, built.stderr
    header = (EXAMPLES / script).read_text(encoding="utf-8").split("set -euo pipefail")[0]
    for running, (want_stages, want_skipped, display) in DOCUMENTED[script].items():
        flags = ["--webcall-running"] if running else []
        result = run(["mtctl", "ring-sim", "40710", *flags, "--json"], env)
        assert result.returncode == 0, result.stderr
        plan = json.loads(result.stdout)
        assert (stages(plan), skipped(plan), plan["display_name"]) == \
            (want_stages, want_skipped, display), (script, running)
        # The header comment says the same thing the store does.
        assert f'"{display}"' in header
        for ref, reason in want_skipped:
            assert ref in header and reason in header
    check = run(["mtctl", "check", "--json"], env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["errors"] == []
    if script == "portal.sh":
        assert_user_portal_table(env)


def assert_user_portal_table(env: dict[str, str]) -> None:
    """The seed's user-portal table, row for row (Linphone's empty position cell is 0)."""
    result = run(["mtctl", "user", "phones", "ana", "--json"], env)
    assert result.returncode == 0, result.stderr
    rows = [(p["model"], p["extension"], p["position"], p["order"], p["enabled"],
             p["provisionable"]) for p in json.loads(result.stdout)]
    assert rows == [
        ("Linphone (no proxy)", "40710", 0, 0, False, False),
        ("VIVAit Call Business iOS", "40710", 1, 0, False, False),
        ("VIVAit Call Business Android", "40710", 2, 3, True, True),
    ]


def test_demo_runs_the_multiterminal_example(tmp_path):
    env = shell_env(f"sqlite:///{tmp_path / 'unused.db'}")
    result = run(["bash", str(EXAMPLES / "demo.sh")], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Caller sees: Ana García" in result.stdout
    assert "Caller sees: Desk 40710" in result.stdout


def test_readme_quick_tour_runs_as_written(empty_url, tmp_path):
    """Every line of README's quick tour, pasted into a shell, succeeds and shows what its
    comment says (the store from the test, not the tour's $HOME/pbx.db)."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## Quick tour", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in tour.splitlines() if not line.startswith("export ")]
    script = tmp_path / "tour.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(lines) + "\n", encoding="utf-8")
    env = shell_env(empty_url)
    toured = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,  # noqa: S603, S607
                            timeout=300, check=False, cwd=tmp_path)
    assert toured.returncode == 0, toured.stderr
    result = run(["mtctl", "ring-sim", "40710", "--offline", "40710:2", "--json"], env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert ("40710:2", "not-registered") in skipped(plan)  # "why didn't my mobile ring?"
