"""`mtctl export kamailio`: a Kamailio config for the store in use, and how to run it."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mtctl.errors import UsageError
from mtctl.formats.kamailio import kamailio_cfg, kamailio_db


def test_writes_the_config_and_a_readme(seeded, tmp_path):
    out = tmp_path / "kam"
    r = seeded("export", "kamailio", "--out", str(out), "--listen", "udp:127.0.0.1:5099")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    cfg = (out / "kamailio.cfg").read_text()
    assert "listen=MT_LISTEN" in cfg and "udp:127.0.0.1:5099" in cfg
    assert "@@" not in cfg
    assert stat.S_IMODE((out / "kamailio.cfg").stat().st_mode) == 0o600
    readme = (out / "README.md").read_text()
    assert "kamailio -DD -E -f" in readme and "ring-sim NUMBER --live" in readme
    # no copy of data: no phone, key or name of the store's content in the config
    assert "40710" not in cfg and "Ana" not in cfg


def recording_sql(cfg: str, starts: str, values: dict[str, str]) -> str:
    """The SQL that the line `$var(sql) = "STARTS..." + $pv + "...";` of CFG builds, each
    pseudo-variable replaced by the value of the VALUES key it starts with."""
    line = next(line.strip() for line in cfg.splitlines()
                if line.strip().startswith(f'$var(sql) = "{starts}'))
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|(\$\S+)',
                       line.removeprefix("$var(sql) = ").removesuffix(";"))
    return "".join(literal.replace('\\"', '"') if not pv else
                   next(value for name, value in values.items() if pv.startswith(name))
                   for literal, pv in parts)


@pytest.mark.parametrize(("node", "said"), [(None, "(single proxy)"),
                                            ("madrid", "(node madrid)")])
def test_calls_explain_names_the_proxy_that_recorded_the_call(seeded, tmp_path, node, said):
    """The call_record SQL of the exported config, run as Kamailio would: explain names the
    node of a node's config, and the single proxy for the config without --node."""
    if node is not None:
        seeded.ok("node", "set", node, "--sip-address", "127.0.0.1:5071")
    seeded.ok("export", "kamailio", "--out", str(tmp_path / "k"),
              *(("--node", node) if node else ()))
    cfg = (tmp_path / "k" / "kamailio.cfg").read_text()
    values = {"$avp(rec_ci)": "rec-1@192.0.2.9", "$(fU": "1001", "$avp(ext)": "40710",
              "$TV(Sn)": f"{time.time():.6f}", "$var(outcome)": "no-answer", "$var(code)": "408",
              "$(var(reason)": "Request Timeout"}
    engine = create_engine(seeded.url)
    try:
        with engine.begin() as conn:
            conn.execute(text(recording_sql(cfg, "INSERT INTO call_record", values)))
            conn.execute(text(recording_sql(cfg, "UPDATE call_record SET ended_ms", values)))
    finally:
        engine.dispose()
    r = seeded("calls", "explain", "rec-1@192.0.2.9", "--format", "table")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].startswith("Call rec-1@192.0.2.9 from 1001 to 40710 at ")
    assert r.stdout.splitlines()[0].endswith(f" {said}: no answer"), r.stdout


def test_the_toml_export_is_still_the_plain_export(seeded):
    r = seeded("export")
    assert r.exit_code == 0, r.output
    assert "40710" in r.stdout


def test_toml_export_options_before_kamailio_are_refused(seeded, tmp_path):
    out = tmp_path / "pbx.toml"
    r = seeded("export", "-o", str(out), "kamailio", "--out", str(tmp_path / "k"))
    assert r.exit_code == 2, r.output
    assert "-o/--json belong to the TOML export" in r.stderr
    assert not out.exists() and not (tmp_path / "k").exists()


def test_a_bad_listen_address_is_a_usage_error(seeded, tmp_path):
    r = seeded("export", "kamailio", "--out", str(tmp_path / "k"), "--listen", "5060")
    assert r.exit_code == 2, r.output
    assert "--listen" in r.stderr and not (tmp_path / "k").exists()


def test_help_has_an_example(seeded):
    r = seeded("export", "kamailio", "--help")
    assert r.exit_code == 0, r.output
    assert "Example: mtctl export kamailio" in r.stdout


def test_store_urls_become_kamailio_db_urls(tmp_path):
    db = kamailio_db("sqlite:///rel/pbx.db", cwd=tmp_path)
    assert (db.module, db.url, db.env) == (
        "db_sqlite.so", f"sqlite:///{tmp_path / 'rel' / 'pbx.db'}", {})
    assert db.url.startswith("sqlite:////")  # db_sqlite takes the path after the 3rd slash
    db = kamailio_db("postgresql+psycopg://kam:s3cret@db.example:5433/pbx"
                     "?options=-csearch_path%3Dt1", cwd=tmp_path)
    assert (db.module, db.url, db.env) == (
        "db_postgres.so", "postgres://kam:s3cret@db.example:5433/pbx",
        {"PGOPTIONS": "-csearch_path=t1"})
    for bad in ("sqlite://", "mysql://u@h/d", "postgresql://u@h/"):
        with pytest.raises(UsageError):
            kamailio_db(bad, cwd=tmp_path)


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
def test_kamailio_accepts_the_config(seeded, tmp_path):
    db = kamailio_db(seeded.url, cwd=Path.cwd())
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(kamailio_cfg(db, listen="udp:127.0.0.1:5099"))
    check = subprocess.run(["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True,
                           timeout=30)
    if check.returncode and f"{db.module}" in check.stderr and "could not" in check.stderr \
            and os.environ.get("MTCTL_E2E_REQUIRED") != "1":
        pytest.skip(f"Kamailio's {db.module} is not installed")
    assert check.returncode == 0, check.stdout + check.stderr
