"""What is online, from live registrations and Web Call sessions: the Presence `ring-sim --live`
and Kamailio agree on."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from mtctl.domain.ringing import PhoneKey, Presence, RingTarget


def live_presence(target: RingTarget, registered: Collection[PhoneKey],
                  sessions: Mapping[str, str] | None = None) -> Presence:
    """Presence when exactly the REGISTERED phones are online and SESSIONS (username ->
    extension) are the open Web Call sessions.

    Exclusive mode: Web Call runs on the user's session extension W when W is one of the user's
    Web Call extensions and W's Web Call phone is registered; else on the first of the user's
    individually assigned Web Call extensions whose Web Call phone is registered. A pool
    extension counts only with the user's session: someone else may be logged in there.
    Otherwise Web Call runs while the called extension's Web Call phone is registered.
    """
    online = frozenset(registered)
    sessions = dict(sessions or {})
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
        session = sessions.get(user.username)
        counted = [session] if session in user.all_webcall_extensions else []
        counted += user.webcall_extensions
        chosen = next((n for n in counted
                       if n in target.webcall_extensions and webcall_online(n)), None)
        return Presence(webcall_running=chosen is not None, webcall_extension=chosen,
                        offline=offline, sessions=sessions)
    return Presence(webcall_running=webcall_online(target.extension.number), offline=offline,
                    sessions=sessions)
