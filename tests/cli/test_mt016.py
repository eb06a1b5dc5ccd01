"""MT016: an extension has at most one Web Call phone — refused on every write, found by check."""

import json

from sqlalchemy import select, update

from mtctl.store.tables import phone, phone_model, template
from tests.dump import assert_refused, dump_store, plant

WEB = "VIVAit Call Web"


def test_a_second_web_call_phone_is_refused_by_phone_add_and_phone_set(seeded):
    # 40710:1 is ana's Web Call phone (seeded)
    r = assert_refused(seeded, "phone", "add", "40710", "--position", "2", "--model", WEB,
                       exit_code=1, rule="MT016")
    assert "phone 40710:2" in r.stderr and "40710:1" in r.stderr
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Generic SIP hardphone")
    assert_refused(seeded, "phone", "set", "40710", "2", "--model", WEB, "--template", "webfon",
                   exit_code=1, rule="MT016")
    phones = json.loads(seeded.ok("phone", "list", "40710", "--json").stdout)
    assert [p["model"] for p in phones].count(WEB) == 1


def test_apply_reports_a_second_web_call_phone_at_its_place_and_writes_nothing(seeded,
                                                                                tmp_path):
    path = tmp_path / "two.toml"
    path.write_text('nodes = ["madrid"]\n\n[extensions.40900]\nnode = "madrid"\nphones = [\n'
                    f'    {{ position = 0, model = "{WEB}" }},\n'
                    f'    {{ position = 3, model = "{WEB}" }},\n]\n')
    before = dump_store(seeded.url)
    r = seeded("apply", str(path), "--json")
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert data["applied"] is False
    assert [(e["rule"], e["location"]) for e in data["errors"]] == \
        [("MT016", 'extensions."40900".phones[1]')]
    assert "second Web Call phone" in data["errors"][0]["message"]
    assert dump_store(seeded.url) == before


def test_check_finds_a_second_web_call_phone_planted_by_sql(seeded):
    seeded.ok("phone", "add", "40710", "--position", "2", "--model", "Generic SIP hardphone")
    assert seeded("check").exit_code == 0
    with_web = select(phone_model.c.id).where(phone_model.c.name == WEB).scalar_subquery()
    webfon = select(template.c.id).where(template.c.name == "webfon").scalar_subquery()
    plant(seeded.url, update(phone).where(phone.c.sip_auth_user == "40710-2")
          .values(model_id=with_web, template_id=webfon))
    r = seeded("check", "--json")
    assert r.exit_code == 1, r.output
    errors = json.loads(r.stdout)["errors"]
    assert [(e["rule"], e["object"]) for e in errors] == [("MT016", "phone 40710:2")]
    assert "error\tMT016\tphone 40710:2\t" in seeded("check").stdout
