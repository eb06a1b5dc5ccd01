"""Valid files damaged at random: apply never shows a traceback, and afterwards the store is
either exactly as it was or exactly what a valid file describes."""

from __future__ import annotations

import copy
import datetime
import json
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import Mtctl
from tests.dump import dump_store

BASE = """nodes = ["madrid", "sevilla"]
categories = ["internal"]

[settings]
sip.domain = "pbx.example.com"

[models."Acme App"]
vendor = "Acme"
kind = "app"
qr = true

[templates.mobile]
secure = true
key_lifetime_days = 30
category = "internal"

[groups.pool]
extensions = ["40790"]

[extensions.40710]
node = "madrid"
name = "Desk 40710"
phones = [
    { position = 0, model = "Cisco 8841", location = "Madrid" },
    { position = 1, model = "VIVAit Call Web" },
    { position = 2, model = "Acme App", template = "mobile", order = 3, publishable = true },
]

[extensions.40711]
node = "madrid"
phones = [{ position = 0, model = "VIVAit Call Web" }]

[extensions.40720]
node = "sevilla"
ring_timeout = 30
phones = [{ position = 0, model = "Linphone (no proxy)", order = 0, enabled = false }]

[extensions.40790]
node = "madrid"
phones = [{ position = 0, model = "VIVAit Call Web" }]

[users.ana]
name = "Ana García"
login = "40710"
webcall_mode = "multiterminal"
webcall_position = 1

[users.bob]
name = "Bob"
login = "40720"
webcall_mode = "exclusive"
webcall_license = "pool"
webcall_group = "pool"

[users.carol]
name = "Carol"
login = "40711"
"""

KEYS = ["position", "order", "model", "node", "name", "login", "phones", "secure",
        "publishable", "webcall_mode", "webcall_position", "extensions", "kind", "x", "",
        "40710", "40799", "ana", "madrid", "ha1"]
STRINGS = ["VIVAit Call Web", "Cisco 8841", "Acme App", "mobile", "webfon", "default",
           "internal", "madrid", "40710", "40711", "40799", "pool", "exclusive",
           "multiterminal", "dedicated", "app", "", "x" * 200, "nul\x00", "ñ"]
VALUES = st.one_of(
    st.integers(-3, 10), st.sampled_from([600, 601, 2**31, 2**63 - 1]), st.booleans(),
    st.sampled_from(STRINGS), st.text(max_size=6), st.floats(allow_nan=False, width=32),
    st.lists(st.integers(0, 9), max_size=2), st.just({}), st.just({"position": 0}),
    st.just(datetime.date(2024, 1, 1)))


def places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every (path to a container, key or index) in the document."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else []
    for key, value in items:
        found.append((path, key))
        found += places(value, (*path, key))
    return found


def at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def damaged(draw: st.DrawFn) -> str:
    doc = tomllib.loads(BASE)
    for _ in range(draw(st.integers(1, 2))):
        where = places(doc)
        if not where:
            break
        path, key = draw(st.sampled_from(where))
        parent = at(doc, path)
        op = draw(st.sampled_from(["drop", "drop", "drop", "revalue", "revalue", "duplicate",
                                   "retype", "rename"]))
        if op == "drop":
            del parent[key]
        elif op == "duplicate":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(parent[key]))
            else:
                parent[draw(st.sampled_from(KEYS))] = copy.deepcopy(parent[key])
        elif op == "retype":
            parent[key] = draw(VALUES)
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = parent.pop(key)
        elif isinstance(parent[key], str):
            parent[key] = draw(st.sampled_from(STRINGS))
        elif isinstance(parent[key], int):
            parent[key] = draw(st.integers(-2, 9))
    text = tomli_w.dumps(doc)
    lines = text.splitlines(keepends=True)
    damage = draw(st.sampled_from(["none"] * 7 + ["copy-line", "drop-line", "cut"]))
    if damage != "none" and lines:
        index = draw(st.integers(0, len(lines) - 1))
        if damage == "copy-line":
            lines.insert(index, lines[index])
        elif damage == "drop-line":
            del lines[index]
        else:
            lines[index] = lines[index][: len(lines[index]) // 2]
    return "".join(lines)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=damaged(), prune=st.booleans(), dry_run=st.booleans())
def test_a_damaged_file_never_half_applies(mtctl: Mtctl, tmp_path: Path, text: str,
                                            prune: bool, dry_run: bool):
    base = tmp_path / "base.toml"
    if not base.exists():
        base.write_text(BASE, encoding="utf-8")
        mtctl.ok("apply", str(base))
    path = tmp_path / "damaged.toml"
    path.write_text(text, encoding="utf-8")
    flags = ["--prune"] * prune + ["--dry-run"] * dry_run
    before = dump_store(mtctl.url)
    result = mtctl("apply", str(path), *flags, "--json")
    assert "Traceback" not in result.output, result.output
    assert result.exit_code in (0, 1), (text, result.output)
    report = json.loads(result.stdout)
    event(f"exit {result.exit_code}" + (", with changes" if report["changes"] else ""))
    if result.exit_code == 1:  # every problem of the file names its line
        assert [e for e in report["errors"] if e["location"] != "(store)"
                and not isinstance(e["line"], int)] == [], (text, report["errors"])
    if result.exit_code == 1 or dry_run:
        assert report["applied"] is False or not report["changes"]
        assert dump_store(mtctl.url) == before, text
        return
    assert report["errors"] == []
    # The store is now what this (valid) file describes: applying it again changes nothing,
    # and every rule holds over the whole store.
    again = json.loads(mtctl.ok("apply", str(path), *flags, "--json").stdout)
    assert again["changes"] == [], (text, again)
    check = mtctl("check", "--json")
    assert json.loads(check.stdout)["errors"] == [], (text, check.stdout)
    mtctl.ok("apply", str(base), "--prune")
