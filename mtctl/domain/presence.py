"""What is online, from live registrations: the Presence `ring-sim --live` and Kamailio agree on."""

from __future__ import annotations

from collections.abc import Collection

from mtctl.domain.ringing import PhoneKey, Presence, RingTarget


def live_presence(target: RingTarget, registered: Collection[PhoneKey]) -> Presence:
    """Presence when exactly the REGISTERED phones are online.

    Web Call runs while a Web Call phone is registered: in exclusive mode, on the first of the
    user's Web Call extensions (own ones first, then the group's) whose Web Call phone is
    registered; otherwise, on the called extension itself.
    """
    online = frozenset(registered)
    phones = list(target.extension.phones)
    for ext in target.webcall_extensions.values():
        phones += ext.phones
    offline = frozenset((p.extension, p.position) for p in phones
                        if (p.extension, p.position) not in online)

    def webcall_online(number: str) -> bool:
        ext = target.extension if number == target.extension.number else \
            target.webcall_extensions.get(number)
        return ext is not None and any(
            p.is_webcall and (p.extension, p.position) in online for p in ext.phones)

    user = target.user
    if user is not None and user.webcall_mode == "exclusive":
        chosen = next((n for n in user.all_webcall_extensions
                       if n in target.webcall_extensions and webcall_online(n)), None)
        return Presence(webcall_running=chosen is not None, webcall_extension=chosen,
                        offline=offline)
    return Presence(webcall_running=webcall_online(target.extension.number), offline=offline)
