"""`mtctl apply` of a file parsed a piece at a time: the same store, audit, output and
problems as the same file read whole, on every backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mtctl.formats.pbx_file import load
from mtctl.store.tables import audit_log, phone
from tests.conftest import Mtctl, migrated_store
from tests.dump import dump_store

# Differ between two runs whatever the parser: when, and the random keys and what follows.
MASKED = {"audit_log": [audit_log.c.keys().index("at")],
          "phone": [phone.c.keys().index(c) for c in (
              "ha1", "ha1_sha256", "key_expires_at", "key_updated_at")]}


def _file(count: int) -> str:
    lines = ['nodes = ["madrid", "sevilla"]\n', 'categories = ["local"]\n',
             '[settings.sip]\ndomain = "pbx.example.com"\n']
    for i in range(count):
        number = 40000 + i
        node = ("madrid", "sevilla")[i % 2]
        phones = [f'{{ position = 0, model = "Cisco 8841", mac = "00:11:22:33:{i // 256:02x}:'
                  f'{i % 256:02x}" }}' if i % 3 == 0 else
                  '{ position = 0, model = "Cisco 8841", location = "Hall" }',
                  '{ position = 1, model = "VIVAit Call Web" }',
                  f'{{ position = 2, model = "VIVAit Call Business Android", secure = true, '
                  f'order = {i % 4} }}',
                  '{ position = 3, model = "Linphone (no proxy)", category = "local" }']
        name = f'name = "Desk {number}"\n' if i % 5 else ""
        lines.append(f'[extensions.{number}]\nnode = "{node}"\n{name}phones = [\n    '
                     + ",\n    ".join(phones) + ",\n]\n")
    lines.append('[groups.sales]\nextensions = ["40001", "40005"]\n')
    for i in range(0, count, 4):
        lines.append(f'[users.u{i}]\nname = "User {i}"\nlogin = "{40000 + i}"\n'
                     'webcall_mode = "multiterminal"\nwebcall_position = 1\n')
    return "\n".join(lines)


def _masked(url: str) -> dict[str, list[tuple[Any, ...]]]:
    dump = dump_store(url)
    for table, columns in MASKED.items():
        dump[table] = [tuple(None if i in columns else v for i, v in enumerate(row))
                       for row in dump[table]]
    changes = audit_log.c.keys().index("changes")  # a new key's expiry: from the time too
    dump["audit_log"] = [(*row[:changes], _without_expiry(row[changes]), *row[changes + 1:])
                         for row in dump["audit_log"]]
    return dump


def _without_expiry(changes: Any) -> Any:
    if isinstance(changes, str):  # JSON as text, whatever the driver gives back
        changes = json.loads(changes)
    if isinstance(changes, dict) and "key_expires_at" in changes:
        return {**changes, "key_expires_at": [None, "(masked)"]}
    return changes


def _apply(mtctl: Mtctl, path: Path, monkeypatch: pytest.MonkeyPatch, *, whole: bool,
           ) -> Any:
    with monkeypatch.context() as m:
        if whole:
            m.setattr(load, "_pieces", lambda text: None)
        else:
            m.setattr(load, "PIECE_CHARS", 400)
        return mtctl("apply", str(path))


def test_a_file_of_many_pieces_applies_as_the_whole(mtctl, backend, tmp_path, request,
                                                    monkeypatch):
    path = tmp_path / "pbx.toml"
    path.write_text(_file(48), encoding="utf-8")
    with monkeypatch.context() as m:
        m.setattr(load, "PIECE_CHARS", 400)
        assert len(load._pieces(path.read_text()) or []) > 20
    whole = Mtctl(migrated_store(backend, tmp_path, request, name="whole.db"))
    pieces = _apply(mtctl, path, monkeypatch, whole=False)
    assert pieces.exit_code == 0, pieces.output
    assert pieces.output == _apply(whole, path, monkeypatch, whole=True).output
    dump = _masked(mtctl.url)
    assert len(dump["phone"]) == 48 * 4
    assert len(dump["audit_log"]) > 48 * 5
    assert dump == _masked(whole.url)
    again = _apply(mtctl, path, monkeypatch, whole=False)
    assert again.exit_code == 0 and "no changes" in again.output


def test_a_problem_in_a_late_piece_writes_nothing(mtctl, tmp_path, monkeypatch):
    text = _file(40).replace('[extensions.40037]\nnode = "sevilla"',
                             '[extensions.40037]\nnode = "nowhere"')
    path = tmp_path / "pbx.toml"
    path.write_text(text, encoding="utf-8")
    before = dump_store(mtctl.url)
    pieces = _apply(mtctl, path, monkeypatch, whole=False)
    assert pieces.exit_code != 0
    assert "unknown node 'nowhere'" in pieces.stderr
    assert dump_store(mtctl.url) == before
    assert pieces.output == _apply(mtctl, path, monkeypatch, whole=True).output
