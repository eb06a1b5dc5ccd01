"""`apply` writes many rows per INSERT on SQLite (store/bulk.py): files whose phones, extensions
and audit rows fill whole batches, or whole batches and a few rows more, come out whole and in
the file's order, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from mtctl.store.bulk import ROWS_PER_INSERT
from tests.conftest import Mtctl

MODELS = ["Cisco 8841", "VIVAit Call Web", "VIVAit Call Business Android", "Linphone (no proxy)"]


def pbx(extensions: int) -> dict:
    """extensions × 4 phones, their values varied by place (orders, disabled and secure
    phones, a location, a display name on some extensions)."""
    doc: dict = {"settings": {"sip": {"domain": "pbx.example.com"}}, "nodes": ["n1", "n2"],
                 "extensions": {}}
    for i in range(extensions):
        phones = []
        for position, model in enumerate(MODELS):
            p: dict = {"position": position, "model": model}
            if (i + position) % 3:
                p["order"] = (i + position) % 4
            if (i * 4 + position) % 7 == 0:
                p["enabled"] = False
            if model == "VIVAit Call Business Android" and i % 2:
                p["secure"] = True
            if model == "Cisco 8841" and i % 5 == 0:
                p["location"] = f"Floor {i}"
            phones.append(p)
        entry: dict = {"node": f"n{i % 2 + 1}", "phones": phones}
        if i % 3:
            entry["name"] = f"Desk {i}"
        doc["extensions"][str(70000 + i)] = entry
    return doc


@pytest.mark.parametrize("extensions", [
    ROWS_PER_INSERT // 4,  # phones fill whole batches, nothing left over
    ROWS_PER_INSERT // 4 + 1,  # and four more
    ROWS_PER_INSERT * 2 + 3,  # extensions fill two batches and three more
])
def test_a_file_of_many_phones_is_written_whole_and_in_order(mtctl: Mtctl, tmp_path: Path,
                                                            extensions: int) -> None:
    doc = pbx(extensions)
    path = tmp_path / "pbx.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    printed = mtctl.ok("apply", str(path)).stdout

    # every change on its own line, in the file's order (written a thousand lines at a time)
    assert printed.splitlines() == ["+ config sip.domain", "+ node n1", "+ node n2", *(
        line for number in doc["extensions"] for line in (
            f"+ extension {number}", *(f"+ phone {number}:{p}" for p in range(4))))]
    phones = json.loads(mtctl.ok("phone", "list", "--json").stdout)
    assert len(phones) == extensions * 4
    got = {(p["extension"], p["position"]): (p["model"], p["order"], p["enabled"], p["secure"],
                                            p["location"]) for p in phones}
    for number, entry in doc["extensions"].items():
        for p in entry["phones"]:
            assert got[(number, p["position"])] == (
                p["model"], p.get("order", 1), p.get("enabled", True), p.get("secure", False),
                p.get("location")), (number, p)
    listed = {e["number"]: (e["node"], e["display_name"])
              for e in json.loads(mtctl.ok("ext", "list", "--json").stdout)}
    assert listed == {n: (e["node"], e.get("name")) for n, e in doc["extensions"].items()}

    # one audit row per added object, in the file's order: each extension, then its phones
    rows = json.loads(mtctl.ok("audit", "--json").stdout)
    objects = [r["object"] for r in rows if r["object"].startswith(("extension ", "phone "))]
    assert objects == [name for number in doc["extensions"] for name in (
        f"extension {number}", *(f"phone {number}:{position}" for position in range(4)))]
    assert len({r["id"] for r in rows}) == len(rows)

    # and what was written is the file again
    exported = tmp_path / "again.toml"
    mtctl.ok("export", "-o", str(exported))
    assert "no changes" in mtctl.ok("apply", str(exported)).output
    assert "no changes" in mtctl.ok("apply", str(path)).output


def test_a_wide_table_gets_fewer_rows_per_statement_within_sqlites_parameter_limit() -> None:
    """40 columns × 1,024 rows would be 40,960 parameters, over SQLite's default limit of
    32,766 (Debian's library allows more; the limit is lowered to the default here): the rows
    still all arrive, whole, in their order."""
    import sqlite3

    from sqlalchemy import Column, Integer, MetaData, Table, create_engine, select

    from mtctl.store.bulk import bulk_insert

    columns = [f"c{i}" for i in range(40)]
    assert len(columns) * ROWS_PER_INSERT > 32_766
    wide = Table("wide", MetaData(), Column("id", Integer, primary_key=True),
                 *(Column(c, Integer) for c in columns))
    engine = create_engine("sqlite://")
    wide.metadata.create_all(engine)
    rows = [tuple(n * 100 + i for i in range(40)) for n in range(2 * ROWS_PER_INSERT + 5)]
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
        bulk_insert(conn, wide, columns).run(iter(rows))
        stored = conn.execute(select(*(wide.c[c] for c in columns)).order_by(wide.c.id)).all()
    assert [tuple(r) for r in stored] == rows
