"""Random stores on a real Kamailio: Kamailio, `ring-sim --live` and `ring-sim` (given who is
registered and which Web Call sessions are open) ring the same phones, call after call.

Every store has a Web Call pool shared by at least two exclusive users, and maybe users with
their own Web Call extensions, a multiterminal user, a user without Web Call and a plain
extension. Phones register once; between calls users start and stop Web Call sessions (a
second session on a busy extension is refused, exit 4). STORES stores per backend (CI runs
both backends).
"""

from __future__ import annotations

import random

import pytest

from tests.dump import assert_refused
from tests.e2e.conftest import Pbx
from tests.e2e.pools import Store, User, bring_online, build_store, call_agrees
from tests.e2e.test_ring_agreement import OTHER_MODELS, WEBCALL, Phone

STORES = 50
CALLS = 3
NAMES = ("Ana García", "Bea Ruiz", 'Bo "B" \\', "Cai Li", "Dan O'Neil", "Eva Müller")


def _phones_of(rng: random.Random, number: str, webcall_at: int | None = None) -> list[Phone]:
    count = rng.randint(1, 3)
    positions = sorted(set(rng.sample(range(8), count)) | ({webcall_at} - {None}))
    phones = []
    for position in positions:
        if position == webcall_at:
            phones.append(Phone(number, position, WEBCALL, order=rng.randint(1, 3),
                                enabled=rng.random() < 0.9, registered=rng.random() < 0.6))
            continue
        model = "Cisco 8841" if position == 0 and rng.random() < 0.3 else \
            rng.choice(OTHER_MODELS)
        phones.append(Phone(number, position, model, order=rng.randint(0, 3),
                            enabled=rng.random() < 0.8, registered=rng.random() < 0.7))
    return phones


def _web_phone(rng: random.Random, number: str) -> Phone:
    return Phone(number, 0, WEBCALL, order=rng.choice([1, 1, 1, 2, 0]),
                 enabled=rng.random() < 0.9, registered=rng.random() < 0.7)


def random_store(seed: int) -> Store:
    """A pool of 1–3 extensions, 2–4 users (the first two exclusive on the pool)."""
    rng = random.Random(seed)
    p = f"{seed:03d}"
    store = Store(pool=[f"9{p}{j}" for j in range(rng.randint(1, 3))])
    rng.shuffle(store.pool)  # the group's order is not the numbers' order
    for number in store.pool:
        store.names[number] = None
        store.phones.append(_web_phone(rng, number))
    for i in range(rng.randint(2, 4)):
        login = f"1{p}{i}"
        kind = "pool" if i < 2 else rng.choice(["pool", "own", "own+pool", "multiterminal",
                                                 "none"])
        user = User(f"u{seed}x{i}", rng.choice(NAMES), login)
        webcall_at = None
        if kind == "multiterminal":
            webcall_at = rng.randint(1, 7)
            user.mode, user.webcall_position = "multiterminal", webcall_at
        elif kind != "none":
            user.mode, user.group = "exclusive", "pool" in kind
            if "own" in kind:
                user.own = [f"8{p}{i}"]
                store.names[user.own[0]] = None
                store.phones.append(_web_phone(rng, user.own[0]))
        store.names[login] = rng.choice([None, f"Desk {login}", 'Q "x" \\ y'])
        store.phones += _phones_of(rng, login, webcall_at)
        store.users.append(user)
    if rng.random() < 0.3:
        plain = f"5{p}0"
        store.names[plain] = rng.choice([None, f"Ext {plain}"])
        store.phones += _phones_of(rng, plain)
    return store


def change_sessions(pbx: Pbx, store: Store, rng: random.Random) -> None:
    """A user logs out, or logs into a free Web Call extension (a busy one is refused)."""
    users = [u for u in store.users if u.session_extensions(store.pool)]
    for user in rng.sample(users, rng.randint(1, min(2, len(users)))):
        if user.username in store.sessions:
            pbx.mtctl.ok("webcall", "stop", user.username)
            del store.sessions[user.username]
            continue
        busy = set(store.sessions.values())
        allowed = user.session_extensions(store.pool)
        free = [n for n in allowed if n not in busy]
        if not free:
            assert_refused(pbx.mtctl, "webcall", "start", user.username, "--ext",
                           rng.choice(allowed), exit_code=4)
            continue
        number = rng.choice(free)
        pbx.mtctl.ok("webcall", "start", user.username, "--ext", number)
        store.sessions[user.username] = number


@pytest.mark.parametrize("seed", range(1, STORES + 1))
def test_pools_and_sessions_ring_alike_in_kamailio_live_and_ring_sim(pbx: Pbx, seed):
    store = random_store(seed)
    rng = random.Random(-seed)
    secrets = build_store(pbx, store)
    online = bring_online(pbx, store, secrets)
    pool_users = [u.login for u in store.users if u.group]
    numbers = [u.login for u in store.users] + [n for n in store.names if n.startswith("5")]
    for _ in range(CALLS):
        change_sessions(pbx, store, rng)
        number = rng.choice(pool_users) if rng.random() < 0.6 else rng.choice(numbers)
        call_agrees(pbx, store, online, number)
