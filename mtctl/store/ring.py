"""Load what the ring function needs for one called number."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mtctl.domain.ringing import Presence, RingTarget
from mtctl.errors import NotFound
from mtctl.store import reader
from mtctl.store.snapshots import extension_specs, user_specs
from mtctl.store.tables import app_user, extension
from mtctl.store.webcall import session_of


def ring_target(conn: Connection, number: str) -> RingTarget:
    """Resolve a called number: a user's login number, else a plain extension (SPEC §3 step 1)."""
    ext_id = conn.execute(select(extension.c.id).where(extension.c.number == number)).scalar()
    if ext_id is None:
        raise NotFound(f"nothing answers to {number!r}: no such extension or login number",
                       "see: mtctl ext list")
    user_id = conn.execute(select(app_user.c.id)
                           .where(app_user.c.login_extension_id == ext_id)).scalar()
    if user_id is None:
        ext = extension_specs(conn, [ext_id])[ext_id]
        return RingTarget(number=number, extension=ext)
    user, named = user_specs(conn, [user_id])[user_id]
    specs = extension_specs(conn, named | {ext_id})
    by_number = {spec.number: spec for spec in specs.values()}
    webcall = {n: by_number[n] for n in user.all_webcall_extensions if n in by_number}
    return RingTarget(number=number, extension=specs[ext_id], user=user,
                      webcall_extensions=webcall)


def ring_sessions(conn: Connection, target: RingTarget) -> dict[str, str]:
    """The called user's Web Call session, as {username: extension} (empty when none)."""
    if target.user is None:
        return {}
    number = session_of(conn, target.user.username)
    return {target.user.username: number} if number is not None else {}


def check_presence(conn: Connection, target: RingTarget, presence: Presence) -> None:
    """Refuse presence flags that name phones or Web Call extensions that do not exist."""
    reader.check_presence(reader.over(conn), target, presence)
