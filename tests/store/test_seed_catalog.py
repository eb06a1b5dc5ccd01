"""The seed catalog in the domain is what a store migrated from scratch holds.

Migrations keep their own frozen copies of the models and templates they insert; runtime code
(apply's prune, export's "only what differs from the seed") reads mtctl.domain.catalog. The two
must agree, after every migration there is, on both backends.
"""

import json

from sqlalchemy import create_engine, select

from mtctl.domain.catalog import SEEDED_MODELS, SEEDED_TEMPLATES, SeededModel, SeededTemplate
from mtctl.store.db import upgrade_store
from mtctl.store.tables import category, phone_model, template
from tests.conftest import Mtctl


def stored_catalog(url: str) -> tuple[set[SeededModel], set[SeededTemplate]]:
    """The phone models and templates in the store at URL, as domain values."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            models = {SeededModel(r.name, r.vendor, r.kind, bool(r.qr_provisionable),
                                  r.profile)
                      for r in conn.execute(select(phone_model))}
            rows = conn.execute(
                select(template, category.c.name.label("category_name"))
                .outerjoin(category, category.c.id == template.c.category_id))
            templates = {SeededTemplate(r.name, bool(r.for_webcall), bool(r.secure),
                                        r.key_lifetime_days, r.category_name) for r in rows}
    finally:
        engine.dispose()
    return models, templates


def test_a_store_migrated_from_scratch_holds_exactly_the_domain_catalog(empty_url):
    upgrade_store(empty_url)
    models, templates = stored_catalog(empty_url)
    assert models == set(SEEDED_MODELS)
    assert templates == set(SEEDED_TEMPLATES)
    assert len(models) == len(SEEDED_MODELS) and len(templates) == len(SEEDED_TEMPLATES)


def test_the_domain_catalog_names_each_entry_once():
    assert len({m.name for m in SEEDED_MODELS}) == len(SEEDED_MODELS)
    assert len({t.name for t in SEEDED_TEMPLATES}) == len(SEEDED_TEMPLATES)


def test_a_fresh_store_is_already_what_an_empty_file_asks_for(empty_url, tmp_path):
    """What a user sees of the agreement: nothing to export, nothing for prune to reset."""
    upgrade_store(empty_url)
    mtctl = Mtctl(empty_url)
    assert mtctl.ok("export").stdout == ""
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    plan = json.loads(mtctl.ok("apply", str(empty), "--prune", "--dry-run", "--json").stdout)
    assert plan["changes"] == []
    listed = {m["name"] for m in json.loads(mtctl.ok("model", "list", "--json").stdout)}
    assert listed == {m.name for m in SEEDED_MODELS}
