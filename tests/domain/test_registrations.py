"""Registrations at a past time, from registration events (pure)."""

from mtctl.domain.registrations import RegistrationEvent, registrations_at


def ev(id_: int, at_s: int, event: str, contact: str = "sip:a@h", expires_s: int = 0,
       user: str = "40710-0") -> RegistrationEvent:
    return RegistrationEvent(id_, at_s * 1000, event, user, contact, "UA", expires_s)


def test_a_contact_counts_from_registration_to_expiry_or_removal():
    events = [ev(1, 100, "registered", expires_s=200), ev(2, 150, "refreshed", expires_s=300),
              ev(3, 250, "unregistered", expires_s=300)]
    assert not registrations_at(events, 99_000)  # nothing known yet
    assert registrations_at(events, 120_000)["40710-0"].registered
    assert registrations_at(events, 220_000)["40710-0"].registered  # refreshed past 200
    gone = registrations_at(events, 260_000)["40710-0"]
    assert not gone.registered and gone.event.event == "unregistered"
    assert gone.since_ms == 250_000


def test_an_unremoved_contact_lapses_at_its_expiry():
    found = registrations_at([ev(1, 100, "registered", expires_s=160)], 200_000)["40710-0"]
    assert not found.registered and found.lapsed_ms == 160_000 and found.since_ms == 160_000


def test_any_live_contact_keeps_the_phone_registered():
    events = [ev(1, 100, "registered", "sip:a@1", 500), ev(2, 110, "registered", "sip:a@2", 500),
              ev(3, 120, "unregistered", "sip:a@1", 500)]
    found = registrations_at(events, 130_000)["40710-0"]
    assert found.registered and found.event.contact == "sip:a@2"
