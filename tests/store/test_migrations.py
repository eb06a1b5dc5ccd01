"""`db upgrade` builds exactly the schema mtctl.store.tables declares, on every backend."""

import json
import os
import stat

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from mtctl.store.db import HEAD_REVISION
from mtctl.store.tables import metadata
from tests.conftest import Mtctl
from tests.dump import dump_store


def schema_diff(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_upgrade_of_an_empty_store_yields_exactly_the_declared_schema(empty_url):
    r = Mtctl(empty_url)("db", "upgrade")
    assert r.exit_code == 0, r.output
    assert f"created store (schema {HEAD_REVISION})" in r.stderr
    assert schema_diff(empty_url) == []


def test_head_revision_is_the_newest_migration():
    config = Config()
    config.set_main_option("script_location", "mtctl.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_upgrade_twice_is_fine_and_changes_nothing(empty_url):
    mtctl = Mtctl(empty_url)
    mtctl.ok("db", "upgrade")
    before = dump_store(empty_url)
    r = mtctl.ok("db", "upgrade")
    assert f"store is up to date (schema {HEAD_REVISION})" in r.stderr
    assert dump_store(empty_url) == before


def test_an_upgraded_store_checks_clean(empty_url):
    mtctl = Mtctl(empty_url)
    mtctl.ok("db", "upgrade")
    assert json.loads(mtctl.ok("check", "--json").stdout) == {"errors": [], "warnings": []}


def test_upgrade_seeds_the_catalog_the_spec_names(empty_url):
    mtctl = Mtctl(empty_url)
    mtctl.ok("db", "upgrade")
    models = {m["name"]: (m["kind"], m["qr_provisionable"], m["profile"])
              for m in json.loads(mtctl.ok("model", "list", "--json").stdout)}
    assert models == {
        "Cisco 8841": ("hardphone", False, "cisco-mpp"),
        "Generic SIP hardphone": ("hardphone", False, None),
        "Linphone (no proxy)": ("softphone", False, None),
        "VIVAit Call Business iOS": ("app", True, "linphone"),
        "VIVAit Call Business Android": ("app", True, "linphone"),
        "VIVAit Call Web": ("webcall", False, None),
        "Yealink T54W": ("hardphone", False, "yealink"),
    }
    templates = {t["name"]: t["for_webcall"]
                 for t in json.loads(mtctl.ok("template", "list", "--json").stdout)}
    assert templates == {"default": False, "webfon": True}


def test_upgrade_creates_the_sqlite_file_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "new" / "dir" / "pbx.db"
    Mtctl(f"sqlite:///{path}").ok("db", "upgrade")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert schema_diff(f"sqlite:///{path}") == []

