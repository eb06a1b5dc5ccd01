"""Build many phones quickly for tests, with Core bulk inserts (never ORM add_all)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, insert, select

from mtctl.store.tables import extension, node, phone, phone_model, setting, template


def make_due_phones(url: str, *, extensions: int, per_extension: int = 4,
                    expired_days_ago: int = 1, first_number: int = 50000) -> None:
    """EXTENSIONS × PER_EXTENSION secure Android phones whose keys expired days ago."""
    engine = create_engine(url)
    old = datetime.now(UTC) - timedelta(days=expired_days_ago)
    with engine.begin() as conn:
        if conn.execute(select(setting.c.key).where(setting.c.key == "sip.domain")).first() \
                is None:
            conn.execute(insert(setting).values(key="sip.domain", value="pbx.example.com"))
        node_id = conn.execute(select(node.c.id).where(node.c.name == "bulk")).scalar()
        if node_id is None:
            node_id = conn.execute(insert(node).values(name="bulk")).inserted_primary_key[0]
        model_id = conn.execute(select(phone_model.c.id).where(
            phone_model.c.name == "VIVAit Call Business Android")).scalar_one()
        template_id = conn.execute(select(template.c.id).where(
            template.c.name == "default")).scalar_one()
        numbers = [str(first_number + i) for i in range(extensions)]
        conn.execute(insert(extension), [{"number": n, "node_id": node_id} for n in numbers])
        ids = dict(conn.execute(select(extension.c.number, extension.c.id)
                                .where(extension.c.number.in_(numbers))).all())
        conn.execute(insert(phone), [
            {"extension_id": ids[n], "node_id": node_id, "position": pos, "ring_order": 1,
             "model_id": model_id, "template_id": template_id, "secure": True,
             "sip_auth_user": f"{n}-{pos}", "ha1": "0" * 32, "ha1_sha256": "0" * 64,
             "key_expires_at": old, "key_updated_at": old - timedelta(days=90)}
            for n in numbers for pos in range(per_extension)
        ])
    engine.dispose()
