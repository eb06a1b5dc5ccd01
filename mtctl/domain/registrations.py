"""Which phones were registered at a past time, from the registration events (SPEC §10). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

REGISTERED = "registered"
REFRESHED = "refreshed"
UNREGISTERED = "unregistered"
EXPIRED = "expired"
EVENTS = (REGISTERED, REFRESHED, UNREGISTERED, EXPIRED)


@dataclass(frozen=True, slots=True)
class RegistrationEvent:
    """One change of one contact of a phone (SIP auth user)."""

    id: int
    at_ms: int
    event: str
    auth_user: str
    contact: str
    user_agent: str
    expires: int  # epoch seconds
    node: str = ""


@dataclass(frozen=True, slots=True)
class PhoneRegistration:
    """A phone at a time: registered or not, and the event that says so.

    `event` is the newest event at or before the time for the contact that decides: a live
    contact when registered, else the contact that went last. `lapsed_ms` is when a contact
    whose removal was not recorded yet stopped counting (its expiry), else None.
    """

    auth_user: str
    registered: bool
    event: RegistrationEvent | None
    lapsed_ms: int | None = None

    @property
    def since_ms(self) -> int | None:
        """Since when the phone has been in this state, as far as the events say."""
        if self.lapsed_ms is not None:
            return self.lapsed_ms
        return self.event.at_ms if self.event is not None else None


def registrations_at(events: Iterable[RegistrationEvent], at_ms: int
                     ) -> dict[str, PhoneRegistration]:
    """Every phone the events name, as it was at AT_MS (epoch milliseconds).

    A contact counts from its registered/refreshed event until its expiry or its removal,
    whichever comes first; events after AT_MS are ignored.
    """
    last: dict[tuple[str, str], RegistrationEvent] = {}
    for event in sorted(events, key=lambda e: (e.at_ms, e.id)):
        if event.at_ms > at_ms:
            break
        last[(event.auth_user, event.contact)] = event
    by_phone: dict[str, list[RegistrationEvent]] = {}
    for (auth_user, _), event in last.items():
        by_phone.setdefault(auth_user, []).append(event)
    found = {}
    for auth_user, latest in by_phone.items():
        live = [e for e in latest if e.event in (REGISTERED, REFRESHED)
                and e.expires * 1000 > at_ms]
        if live:
            found[auth_user] = PhoneRegistration(auth_user, True,
                                                 max(live, key=lambda e: (e.at_ms, e.id)))
            continue
        newest = max(latest, key=lambda e: (_gone_ms(e), e.id))
        lapsed = _gone_ms(newest) if newest.event in (REGISTERED, REFRESHED) else None
        found[auth_user] = PhoneRegistration(auth_user, False, newest, lapsed)
    return found


def _gone_ms(event: RegistrationEvent) -> int:
    """When a contact stopped counting: its expiry while still listed, else the event's time."""
    if event.event in (REGISTERED, REFRESHED):
        return event.expires * 1000
    return event.at_ms
