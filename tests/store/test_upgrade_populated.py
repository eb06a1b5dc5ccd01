"""`db upgrade` of a store that is in use keeps every row: migrations that rebuild a table on
SQLite must neither trip nor fire the foreign keys that point at it."""

from tests.conftest import Mtctl
from tests.store.test_migration_0005 import migrate, run

ROWS = {
    "node": "SELECT id, name FROM node ORDER BY id",
    "extension": "SELECT id, number FROM extension ORDER BY id",
    "phone": "SELECT id, extension_id, position, sip_auth_user FROM phone ORDER BY id",
    "app_user": "SELECT id, username FROM app_user ORDER BY id",
    "provisioning_token": "SELECT id, phone_id, token_hash FROM provisioning_token ORDER BY id",
    "webcall_session": "SELECT id, user_id, extension_id FROM webcall_session ORDER BY id",
}


def test_upgrade_from_0005_keeps_phones_tokens_and_sessions(empty_url):
    migrate(empty_url, "0005")
    model = run(empty_url, "SELECT min(id) FROM phone_model")[0][0]
    template = run(empty_url, "SELECT min(id) FROM template")[0][0]
    for sql in (
        "INSERT INTO node (id, name) VALUES (1, 'pbx1')",
        "INSERT INTO extension (id, number, node_id) VALUES (1, '100', 1), (2, '200', 1)",
        "INSERT INTO phone (id, extension_id, node_id, position, model_id, template_id, "
        f"sip_auth_user) VALUES (1, 1, 1, 0, {model}, {template}, '100-0'), "
        f"(2, 1, 1, 1, {model}, {template}, '100-1')",
        "INSERT INTO app_user (id, username, display_name, login_extension_id) "
        "VALUES (1, 'ana', 'Ana', 1)",
        "INSERT INTO provisioning_token (id, phone_id, token_hash, created_at, redeem_by) "
        "VALUES (1, 2, 'h1', '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
        "INSERT INTO webcall_session (id, user_id, extension_id, since) "
        "VALUES (1, 1, 2, '2026-01-01 00:00:00')",
    ):
        run(empty_url, sql)
    before = {table: run(empty_url, sql) for table, sql in ROWS.items()}
    assert all(before.values())

    Mtctl(empty_url).ok("db", "upgrade")

    assert {table: run(empty_url, sql) for table, sql in ROWS.items()} == before
    listed = Mtctl(empty_url).ok("phone", "list", "100", "--format", "csv").stdout
    assert listed.count("\n100,") == 2
