"""The public shapes: every object mtctl prints as JSON, as a typed definition.

These TypedDicts are what `--format json` (and ndjson) print and what scripts rely on (SPEC §6
and §7). schemas/*.schema.json are generated from them (`python -m mtctl.schemas write`; a
test fails when a checked-in schema is stale). `Spec(...)` in an `Annotated` adds what a type
alone cannot say (a pattern, a range, a format, a description); it costs nothing at run time:
these are plain classes of the `typing` module, cheap to import on every hot path.

Long because: it is the whole JSON contract in one place, one short TypedDict per object a
command prints; split by command group, a shared type (Number, RingPlan) would be imported
across files and a script writer would have to look in several.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict


@dataclass(frozen=True)
class Spec:
    """JSON Schema keywords for one field, beyond what its type says."""

    keywords: tuple[tuple[str, Any], ...]

    def __init__(self, **keywords: Any) -> None:
        object.__setattr__(self, "keywords", tuple(keywords.items()))


Number = Annotated[str, Spec(pattern="^[0-9]+$")]
Position = Annotated[int, Spec(minimum=0, maximum=7)]
Order = Annotated[int, Spec(minimum=0)]
Time = Annotated[str, Spec(format="date-time")]
Kind = Literal["hardphone", "softphone", "app", "webcall"]
Mode = Literal["exclusive", "multiterminal"]
License = Literal["dedicated", "pool"]
Seeded = Annotated[bool, Spec(description="Part of the catalog every store starts with: it "
                                          "cannot be removed.")]
Uses = Annotated[int, Spec(minimum=0, description="How many phones use it.")]


class Phone(TypedDict):
    """A phone, as `phone show --json` prints it and `phone list --json` lists it. Never a
    digest."""

    extension: Number
    position: Position
    order: Order
    enabled: bool
    model: str
    kind: Kind
    template: str
    category: str | None
    location: str | None
    secure: bool
    publishable: bool
    node: str
    sip_auth_user: str
    has_key: bool
    key_expires_at: Time | None
    provisionable: bool
    mac: Annotated[str | None, Spec(pattern="^[0-9a-f]{12}$", description="A desk phone's MAC "
                                    "address, 12 lowercase hex digits.")]
    key_delivered_at: Annotated[Time | None, Spec(
        description="When the phone last fetched its file with a fresh key (desk phones "
                    "provisioned by MAC).")]
    key_delivered_to: Annotated[str | None, Spec(description="The client address of that "
                                                             "fetch.")]


class PhoneShown(Phone):
    """A phone as `phone show --json` prints it: with where it is registered."""

    registered_at: Annotated[str | None, Spec(
        description="The node whose Kamailio holds the phone's live registration (\"\" for "
                    "the single-proxy export), null when it is not registered.")]


class Extension(TypedDict):
    """An extension, as `ext show --json` prints it and `ext list --json` lists it."""

    number: Number
    node: str
    display_name: str | None
    ring_timeout: Annotated[int, Spec(minimum=1)]
    owner: str | None
    phones: Annotated[int, Spec(minimum=0, maximum=8)]


class User(TypedDict):
    """A user, as `user show --json` prints it and `user list --json` lists it."""

    username: str
    display_name: str
    login: Number
    webcall_mode: Mode | None
    webcall_license: License | None
    webcall_extensions: list[Number]
    webcall_group: str | None
    webcall_position: Position | None


class UserPhone(TypedDict):
    """One row of `user phones USERNAME --json` (the user-portal view)."""

    model: str
    extension: Number
    location: str | None
    position: Position
    order: Order
    enabled: bool
    provisionable: bool


class Key(TypedDict):
    """One row of `keys list --json`. Never a digest."""

    extension: Number
    position: int
    model: str
    secure: bool
    sip_auth_user: str
    key_expires_at: Time | None
    key_updated_at: Time | None
    previous_key_valid_until: Time | None
    state: Annotated[Literal["ok", "expiring", "expired", "missing", "no-expiry",
                             "due-on-fetch", "never-provisioned"], Spec(
        description="due-on-fetch: a desk phone provisioned by MAC whose key keys rotate found "
                    "due; its next fetch of its file brings a new one. never-provisioned: a "
                    "secure desk phone provisioned by MAC that never fetched its file, so it "
                    "has no usable key (check warns never-provisioned).")]


class Rotated(TypedDict):
    extension: Number
    position: int
    key_expires_at: Time | None


class Marked(TypedDict):
    extension: Number
    position: int


class DueKey(TypedDict):
    """One row of `keys rotate --dry-run` (table, plain, tsv, csv, ndjson): a phone whose key is
    due."""

    extension: Number
    position: Position
    renewal: Annotated[Literal["rotate", "on-fetch"], Spec(
        description="rotate: keys rotate would give it a new key; on-fetch: a desk phone "
                    "provisioned by MAC, whose key keys rotate would mark due for its next "
                    "fetch to replace.")]


class RotationFailure(TypedDict):
    extension: str | None
    position: int | None
    error: str


class Rotation(TypedDict):
    """What `keys rotate --json` prints."""

    dry_run: bool
    count: Annotated[int, Spec(minimum=0)]
    rotated: list[Rotated]
    failed: list[RotationFailure]
    marked: Annotated[list[Marked], Spec(
        description="Desk phones provisioned by MAC whose key was due: marked, not replaced "
                    "(their next fetch brings a new key). With --dry-run, those that would be "
                    "marked.")]


class AuditRecord(TypedDict):
    """One row of `audit --json`."""

    id: int
    at: Time
    actor: str
    action: str
    object: str
    changes: Annotated[dict[str, list[Any]], Spec(
        description="Each changed field: [before, after], or [value] when added or removed.",
        additionalProperties={"type": "array", "minItems": 1, "maxItems": 2})]


class WebcallSession(TypedDict):
    """One Web Call session: one row of `webcall list --json`, and `webcall start --json`."""

    user: Annotated[str, Spec(description="The username whose Web Call runs.")]
    extension: Annotated[str, Spec(pattern="^[0-9]+$", description="The Web Call extension "
                                                                   "the user is logged into.")]
    since: Annotated[str, Spec(format="date-time", description="When the session started "
                                                               "(UTC).")]


class Node(TypedDict):
    """One row of `node list --json`."""

    name: str
    sip_address: Annotated[str | None, Spec(
        description="HOST:PORT where the node's Kamailio listens (UDP); null on a "
                    "single-proxy site.")]
    extensions: Annotated[int, Spec(minimum=0, description="How many extensions live on it.")]


class NodeShown(Node):
    """A node (a PBX server running its own Kamailio), as `node show --json` prints it."""

    phones: Annotated[int, Spec(minimum=0, description="How many phones live on it.")]
    registered: Annotated[int, Spec(minimum=0, description="Phones with a live registration "
                                                           "at this node now.")]


class Category(TypedDict):
    """One row of `category list --json`."""

    name: str


class ModelRow(TypedDict):
    """One row of `model list --json`."""

    name: Annotated[str, Spec(minLength=1)]
    vendor: str
    kind: Kind
    qr_provisionable: bool
    profile: Annotated[Literal["linphone", "cisco-mpp", "yealink"] | None, Spec(
        description="How its phones are provisioned: linphone (QR code and Linphone XML), "
                    "cisco-mpp or yealink (desk phones by MAC from mtctl serve's /d/), or "
                    "null.")]


class Model(ModelRow):
    """A phone model, as `model show --json` prints it."""

    seeded: Seeded
    phones: Uses


class TemplateRow(TypedDict):
    """One row of `template list --json`."""

    name: Annotated[str, Spec(minLength=1)]
    for_webcall: bool
    secure: bool
    key_lifetime_days: Annotated[int | None, Spec(
        minimum=1, description="null: the global keys.lifetime_days.")]
    category: str | None


class Template(TemplateRow):
    """A phone template, as `template show --json` prints it."""

    seeded: Seeded
    phones: Uses


class Group(TypedDict):
    """One row of `group list --json`: a Web Call group and its extensions."""

    name: str
    extensions: list[Number]


class Setting(TypedDict):
    """One row of `config list --json`."""

    key: str
    value: Annotated[str | None, Spec(description="null: not set and no default.")]
    set: Annotated[bool, Spec(description="Whether the store holds a value (else the default "
                                          "applies).")]
    help: str


class Finding(TypedDict):
    """One problem `check` found."""

    rule: Annotated[str, Spec(description="MT001–MT016, or the name of a check beyond the "
                                          "rules (bad-setting, silent-extension...).")]
    object: str
    message: str
    hint: Annotated[str, Spec(description="How to fix it: a command to run or what to change.")]


class CheckReport(TypedDict):
    """What `check --format json` prints."""

    errors: list[Finding]
    warnings: list[Finding]


Severity = Literal["error", "warning"]


class CheckLine(TypedDict):
    """One line of `check --format ndjson` (and one row of its plain, tsv and csv)."""

    severity: Severity
    rule: Annotated[str, Spec(description="MT001–MT016, or the name of a check beyond the "
                                          "rules (bad-setting, silent-extension...).")]
    object: str
    message: str
    hint: Annotated[str, Spec(description="How to fix it: a command to run or what to change.")]


class StagePhone(TypedDict):
    extension: Number
    position: Position
    model: str


class Stage(TypedDict):
    order: Annotated[int, Spec(minimum=1)]
    ring_seconds: Annotated[int, Spec(minimum=1)]
    phones: Annotated[list[StagePhone], Spec(minItems=1)]


SkipReason = Literal["order-zero", "disabled", "webcall-not-running", "not-registered",
                     "exclusive-webcall-active"]


class SkippedPhone(TypedDict):
    extension: Number
    position: Position
    reason: SkipReason


class RingPlan(TypedDict):
    """Who rings when NUMBER is called (SPEC §3 and §7): the ringing stages in order, and every
    other candidate phone with the reason it does not ring. Phones inside a stage and the
    skipped list are sorted by extension, then position. `ring-sim --format json` prints one;
    ndjson prints each on one line."""

    number: Annotated[str, Spec(pattern="^[0-9]+$", description="The number called (digits, "
                                "kept as a string: it may start with 0).")]
    user: Annotated[str | None, Spec(description="Username whose login number was called; "
                                                 "null for a plain extension.")]
    mode: Annotated[Mode | None, Spec(description="The user's Web Call mode; null for a plain "
                                                  "extension or a user without Web Call.")]
    webcall_running: Annotated[bool, Spec(description="Whether the called user's Web Call was "
                                                      "taken as running.")]
    display_name: Annotated[str, Spec(description="The name the caller sees.")]
    outcome: Annotated[Literal["rings", "silent"], Spec(
        description="rings when there is at least one stage, else silent.")]
    stages: Annotated[list[Stage], Spec(description="Ringing stages, by ascending order; each "
                                                    "rings all its phones at once.")]
    skipped: Annotated[list[SkippedPhone], Spec(
        description="Candidate phones that do not ring, each with the first reason that "
                    "applies.")]


class LiveRegistration(TypedDict):
    extension: Number
    position: Position
    node: Annotated[str | None, Spec(description="The node whose Kamailio holds it; null: "
                                                 "the single-proxy export.")]
    since: Time
    user_agent: str


class LiveRingPlan(RingPlan):
    """What `ring-sim --live --format json` prints: the plan, the live registration of each
    phone it mentions, and the called user's Web Call session."""

    registrations: list[LiveRegistration]
    webcall_session: Annotated[Number | None, Spec(
        description="The extension of the called user's Web Call session (mtctl webcall "
        "start); null: none, or no user. On a pool extension Web Call runs only with it.")]


class RingRow(TypedDict):
    """One phone of a ring plan, as a row of `ring-sim --format plain|tsv|csv`: a phone that
    rings has its stage (1, 2...), order and ring seconds; one that does not has its reason."""

    number: Number
    stage: Annotated[int | None, Spec(minimum=1)]
    order: Order
    ring_seconds: Annotated[int | None, Spec(minimum=1)]
    extension: Number
    position: Position
    model: str
    reason: SkipReason | None


Millis = Annotated[str, Spec(format="date-time", description="ISO 8601 UTC, with milliseconds.")]
Outcome = Literal["answered", "no-answer", "busy", "cancelled", "failed", "silent"]


class PhoneRef(TypedDict):
    extension: Number
    position: Position


class Call(TypedDict):
    """A call the proxy routed (SPEC §10); `calls list --format json` prints an array of these,
    newest first."""

    call_id: Annotated[str, Spec(description="The call's SIP Call-ID.")]
    node: Annotated[str, Spec(description="The node whose proxy routed it ('' for the single "
                                          "proxy).")]
    caller: Annotated[str, Spec(description="The caller's user part (From).")]
    called: Annotated[str, Spec(description="The number called.")]
    started_at: Millis
    ended_at: Millis | None
    outcome: Annotated[Outcome | None, Spec(description="null while the call still rings.")]
    answered_by: PhoneRef | None
    final_code: int | None
    final_reason: str | None
    summary: Annotated[str, Spec(description="The outcome in words: 'answered by 40710:0', "
                                             "'no answer', 'busy', ...")]


class Branch(TypedDict):
    """One INVITE the proxy sent to one phone, as `calls show --format json` lists it."""

    stage: Annotated[int, Spec(minimum=1, description="1 for the first stage that rang.")]
    order: Order
    extension: Number
    position: Position
    auth_user: str
    contact: str
    invited_at: Millis
    ended_at: Millis | None
    final_code: int | None
    final_reason: str | None
    answered: bool


class CallRef(TypedDict):
    call_id: str


class CallBranch(CallRef, Branch):
    """One row of `calls show --format plain|tsv|csv`: a branch and its call's id."""


class CallShow(Call):
    """`calls show --format json`: the call and every branch, in the order they were sent."""

    branches: list[Branch]


class Evidence(TypedDict):
    kind: Literal["audit", "registration", "response", "session"]
    id: Annotated[int | None, Spec(description="The audit row's or registration event's id.")]
    at: Annotated[str | None, Spec(description="When (ISO 8601 UTC).")]
    detail: str


Happened = Literal["answered", "declined", "no-answer", "cancelled", "failed",
                   "no-final-response", "not-sent", "not-reached", "not-rung"]


class PhoneVerdict(TypedDict):
    """One phone of `calls explain`: what the plan said, what happened, why, and the proof."""

    extension: Number
    position: Position
    model: str
    planned: Annotated[str, Spec(description="'stage N', a ring-sim skip reason, or 'not in "
                                             "the plan'.")]
    happened: Happened
    verdict: Annotated[str, Spec(description="In words for support staff.")]
    evidence: list[Evidence]
    divergence: Annotated[str | None, Spec(description="How the proxy departed from the plan "
                                                       "(a bug or a race); null when it did "
                                                       "not.")]


class CallExplanation(TypedDict):
    """`calls explain --format json`: a past call next to SPEC §3's plan with the store and the
    registrations as they were at its start (SPEC §10)."""

    call: Call
    plan: Annotated[RingPlan | None, Spec(description="As ring-sim --json prints it; null when "
                                                      "the number did not exist then.")]
    phones: list[PhoneVerdict]
    divergences: list[str]
    notes: list[str]


class VerdictRow(TypedDict):
    """One phone of `calls explain --format plain|tsv|csv`."""

    call_id: str
    extension: Number
    position: Position
    model: str
    planned: str
    happened: Happened
    verdict: str
    evidence: str
    divergence: str | None
