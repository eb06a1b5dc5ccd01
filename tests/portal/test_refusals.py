"""Refusals as a phone owner reads them: what the rule means for their phones and what to do
in the portal, in their language, with the rule id kept for support."""

from __future__ import annotations

import html
import re

import pytest

from mtctl.domain.model import UserSpec
from mtctl.domain.rules import Violation
from mtctl.errors import MtctlError, NotFound, RuleViolation, StoreError
from mtctl.portal import i18n
from mtctl.portal.refusals import OTHERS, RULES, refusal
from mtctl.store import webcall
from tests.cli.test_secrets import everything_stored
from tests.portal.conftest import SPANISH, Client, link_for, spanish_ana_with_webcall_at_3


def _alert(body: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</div>', body, re.S)
    assert found, body
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))).strip()


def test_every_rule_and_refusal_has_owner_words_in_every_language() -> None:
    from mtctl.domain import rules

    ids = set(re.findall(r'"(MT\d{3})"', open(rules.__file__, encoding="utf-8").read()))
    assert ids and ids <= set(RULES), "a rule a portal change could meet has no owner words"
    texts = {text for pair in RULES.values() for text in pair}
    texts |= {text for _, message, hint in OTHERS for text in (message, hint) if text}
    texts |= {"The service is unavailable right now.", "The change was refused."}
    missing = sorted(texts - set(i18n.catalog("es")))
    assert not missing, f"untranslated: {missing}"


def test_a_rule_refusal_is_in_spanish_with_the_rule_id_and_an_owner_hint(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    client = spanish_ana_with_webcall_at_3(mtctl, server)
    before = everything_stored(mtctl.url)
    r = client.post("/portal/ext/40710/3/order",
                    {"csrf": client.csrf("/portal/ext/40710"), "order": "0"})
    assert r.status == 422
    said = _alert(r.body)
    assert said.startswith("Rechazado (MT009): En modo multiterminal su teléfono Web Call")
    assert "Cómo resolverlo: Dé a su teléfono Web Call un orden de 1 o mayor." in said
    assert "mtctl" not in said, "no command an owner cannot run"
    assert everything_stored(mtctl.url) == before

    r = client.post("/portal/ext/40710/0/provision", {"csrf": client.csrf("/portal/ext/40710")})
    assert r.status == 422
    assert _alert(r.body).startswith("Rechazado (MT015): Solo los teléfonos seguros")

    english = Client(server, lang="en")
    english.login(link_for(mtctl, "ana"))
    r = english.post("/portal/ext/40710/3/order",
                     {"csrf": english.csrf("/portal/ext/40710"), "order": "0"})
    assert _alert(r.body).startswith("Refused (MT009): In multiterminal mode your Web Call")


def test_a_web_call_conflict_is_in_spanish_and_names_no_other_user(served) -> None:  # type: ignore[no-untyped-def]
    mtctl, server = served
    mtctl.ok("ext", "add", "901", "--node", "madrid")
    mtctl.ok("phone", "add", "901", "--position", "0", "--model", "VIVAit Call Web")
    mtctl.ok("user", "set", "ana", "--webcall-mode", "exclusive", "--webcall-ext", "901")
    client = Client(server, lang=SPANISH)
    client.login(link_for(mtctl, "ana"))
    assert client.post("/portal/webcall/start", {"csrf": client.csrf()}).status == 303
    r = client.post("/portal/webcall/start", {"csrf": client.csrf()})
    assert r.status == 409
    assert _alert(r.body) == ("Su Web Call ya está arrancado en la extensión 901. "
                              "Cómo resolverlo: Párelo primero.")
    mtctl.ok("user", "set", "bo", "--webcall-mode", "exclusive", "--webcall-ext", "901")
    bo = Client(server, lang=SPANISH)
    bo.login(link_for(mtctl, "bo"))
    r = bo.post("/portal/webcall/start", {"csrf": bo.csrf()})
    assert r.status == 409
    said = _alert(r.body)
    assert said.startswith("La extensión 901 la está usando otra sesión de Web Call.")
    assert "ana" not in said


def _user(**values: object) -> UserSpec:
    base: dict[str, object] = {"username": "ana", "display_name": "Ana", "login": "40710",
                               "webcall_mode": "exclusive", "webcall_extensions": (),
                               "webcall_group": None, "group_extensions": ()}
    return UserSpec(**{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(("user", "wanted", "busy", "expected"), [
    (_user(), None, {}, "No tiene ninguna extensión de Web Call."),
    (_user(webcall_extensions=("901",)), "902", {},
     "902 no es una de sus extensiones de Web Call."),
    (_user(webcall_extensions=("901", "902")), None, {},
     "Tiene varias extensiones de Web Call."),
    (_user(webcall_group="sales", group_extensions=("903",)), None, {"903": "bo"},
     "Todas las extensiones de Web Call de su grupo están en uso."),
])
def test_the_stores_other_refusals_are_recognised_as_it_words_them(
        user: UserSpec, wanted: str | None, busy: dict[str, str], expected: str) -> None:
    """The store's own messages, not copies: a reworded message fails here, not in a page."""
    with pytest.raises(MtctlError) as raised:
        webcall._choose(user, wanted, busy)
    said = refusal(raised.value, i18n.translator("es"))
    assert said.message == expected and "mtctl" not in (said.hint or "")


def test_a_refused_order_keeps_what_was_typed_in_its_field(served) -> None:  # type: ignore[no-untyped-def]
    """The page that refuses an order shows the typed value in that phone's field, marked
    invalid and described by the refusal, with focus there; the others show the store's."""
    mtctl, server = served
    client = spanish_ana_with_webcall_at_3(mtctl, server)
    before = everything_stored(mtctl.url)
    for typed, status in (("0", 422), ("-4", 422), ("12abc", 422)):
        r = client.post("/portal/ext/40710/3/order",
                        {"csrf": client.csrf("/portal/ext/40710"), "order": typed})
        assert r.status == status
        field = re.search(r'<input id="order-3"[^>]*>', r.body)
        assert field, r.body
        assert f'value="{typed}"' in field.group(0)
        assert 'aria-invalid="true"' in field.group(0)
        assert 'aria-describedby="refusal"' in field.group(0) and 'id="refusal"' in r.body
        other = re.search(r'<input id="order-2"[^>]*>', r.body)
        assert other and 'value="3"' in other.group(0) and "aria-invalid" not in other.group(0)
    assert everything_stored(mtctl.url) == before


@pytest.mark.parametrize("exc", [
    RuleViolation([Violation("MT999", "phone 40710:2", "breaks a rule nobody wrote words for",
                             "run `mtctl phone set 40710 2 --order 1`")]),
    MtctlError("phone 40710:2 is in a state the portal has no words for",
               "mtctl phone show 40710 2"),
    NotFound("user ana has no such thing", "mtctl user list"),
])
def test_a_refusal_the_portal_does_not_recognise_names_no_command(exc: MtctlError) -> None:
    """A store message the portal has no owner words for is never shown as it is: its English
    and its hint (an admin command) become a plain sentence in the owner's language, with the
    rule id kept for support."""
    rule = exc.violations[0].rule if isinstance(exc, RuleViolation) else None
    said = refusal(exc, i18n.translator("es"))
    assert said == (rule, "El cambio fue rechazado.", "Consulte a su administrador.")
    english = refusal(exc, i18n.translator("en"))
    assert english == (rule, "The change was refused.", "Ask your administrator.")
    assert "mtctl" not in f"{said}{english}"


def test_an_unavailable_store_tells_the_owner_to_ask_and_shows_no_detail() -> None:
    """The store's detail (a file path, `run: mtctl db upgrade`) is for the administrator, in
    serve's log; the owner reads that the service is unavailable and whom to ask."""
    exc = StoreError("the store is not initialised at /var/lib/mtctl/pbx.db",
                     "run: mtctl db upgrade")
    english = refusal(exc, i18n.translator("en"))
    assert english == (None, "The service is unavailable right now.", "Ask your administrator.")
    spanish = refusal(exc, i18n.translator("es"))
    assert spanish.hint == "Consulte a su administrador."
    assert spanish.message == i18n.translator("es")("The service is unavailable right now.")
    assert "mtctl" not in f"{english}{spanish}" and "/var/lib" not in f"{english}{spanish}"


def test_recognised_refusals_keep_their_own_words() -> None:
    violation = Violation("MT004", "phone 40710:2", "order -1 is negative", "mtctl phone set")
    said = refusal(RuleViolation([violation]), i18n.translator("es"))
    assert said.message == "El orden de un teléfono es un número entero, 0 o mayor."
