"""`mtctl node|category|model|template|group`: the catalog phones and extensions refer to."""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import typer

from mtctl.cli import complete, output
from mtctl.cli.common import reading, whole_number, writing
from mtctl.cli.output import FieldsOpt, FormatOpt, JsonOpt


class Kind(StrEnum):
    hardphone = "hardphone"
    softphone = "softphone"
    app = "app"
    webcall = "webcall"


class Profile(StrEnum):
    linphone = "linphone"
    cisco_mpp = "cisco-mpp"
    yealink = "yealink"


@dataclass(frozen=True)
class Entry:
    """One kind of catalog entry: its group, what its list (and show) print, how rm reads."""

    what: str
    help: str
    example: str  # a name for the examples
    listed: output.Shape
    list_help: str
    rm_help: str
    shown: output.Shape | None = None  # what `show` prints, for those that have one
    plain_add: str | None = None  # help of `add NAME` when a name is all it takes


def _shape(schema: str, row: str, empty: str,
           titles: dict[str, str] | None = None) -> output.Shape:
    """A catalog entry's shape: a table shows every field."""
    return output.Shape(schema, row, empty=empty, titles=titles or {})


GroupName = Annotated[str, typer.Argument(metavar="NAME", autocompletion=complete.groups)]
Numbers = Annotated[list[str], typer.Argument(metavar="NUMBER",
                                              autocompletion=complete.extensions)]
MODEL_TITLES = {"qr_provisionable": "QR"}
TEMPLATE_TITLES = {"key_lifetime_days": "key lifetime (days)"}
NODE_TITLES = {"sip_address": "SIP address"}
CATALOG = [
    Entry("node", "PBX servers, each running its own Kamailio.", "madrid",
          _shape("node", "Node", "no nodes", NODE_TITLES),
          "List nodes with their SIP address and number of extensions.",
          "Remove a node that no extension lives on.",
          shown=_shape("node-show", "NodeShown", "", NODE_TITLES)),
    Entry("category", "Calling permission classes.", "national",
          _shape("category", "Category", "no categories"),
          "List calling categories.", "Remove a category that no phone or template uses.",
          plain_add="Add a calling category."),
    Entry("model", "Phone models in the catalog.", '"Yealink T46U"',
          _shape("model-row", "ModelRow", "no models", MODEL_TITLES), "List phone models.",
          "Remove a phone model that no phone uses (seeded models stay).",
          shown=_shape("model", "Model", "", MODEL_TITLES)),
    Entry("template", "Presets applied to phones.", "mobile",
          _shape("template-row", "TemplateRow", "no templates", TEMPLATE_TITLES), "List templates.",
          "Remove a template that no phone uses (seeded templates stay).",
          shown=_shape("template", "Template", "", TEMPLATE_TITLES)),
    Entry("group", "Web Call groups: pools of Web Call extensions.", "webcall-pool",
          _shape("group", "Group", "no groups"), "List Web Call groups and their extensions.",
          "Remove a Web Call group that no user draws from (its extensions stay).",
          plain_add="Add a Web Call group (a pool of Web Call extensions)."),
]
APPS = {e.what: typer.Typer(help=e.help, no_args_is_help=True) for e in CATALOG}
node_app, model_app, template_app, group_app = (APPS["node"], APPS["model"], APPS["template"],
                                                APPS["group"])
SipAddressOpt = Annotated[str | None, typer.Option(
    "--sip-address", metavar="HOST:PORT",
    help="Where the node's Kamailio listens (UDP); its phones are provisioned with it.")]


def _help(text: str, example: str) -> str:
    return f"{text}\n\nExample: mtctl {example}"


def _add_command(entry: Entry) -> Callable[..., None]:
    def add(ctx: typer.Context, name: str) -> None:
        from mtctl.store import catalog

        with writing(ctx) as (conn, actor):
            catalog.add_named(conn, actor=actor, what=entry.what, name=name)
        output.note(f"added {entry.what} {name}")

    return add


def _list_command(entry: Entry) -> Callable[..., None]:
    def list_(ctx: typer.Context, fmt: FormatOpt = None, fields: FieldsOpt = None,
              as_json: JsonOpt = False) -> None:
        from mtctl.store import catalog

        with reading(ctx) as conn:
            items = catalog.LISTS[entry.what](conn)
        output.rows(items, entry.listed, output.style(fmt, fields, as_json))

    return list_


def _rm_command(entry: Entry) -> Callable[..., None]:
    def rm(ctx: typer.Context, name: str) -> None:
        from mtctl.store import catalog

        with writing(ctx) as (conn, actor):
            catalog.REMOVES[entry.what](conn, actor=actor, name=name)
        output.note(f"removed {entry.what} {name}")

    return rm


@node_app.command("add", help=_help(
    "Add a PBX node (a server that runs its own Kamailio).",
    "node add madrid --sip-address 192.0.2.10:5060"))
def node_add(ctx: typer.Context, name: str, sip_address: SipAddressOpt = None) -> None:
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_node(conn, actor=actor, name=name, sip_address=sip_address)
    output.note(f"added node {name}")


@node_app.command("set", help=_help(
    "Change a node's SIP address ('' clears it); export its Kamailio config again after.",
    "node set madrid --sip-address 192.0.2.10:5060"))
def node_set(ctx: typer.Context, name: str, sip_address: SipAddressOpt = None) -> None:
    from mtctl.errors import UsageError
    from mtctl.store import nodes

    if sip_address is None:
        raise UsageError("nothing to change", "give --sip-address HOST:PORT ('' clears it)")
    with writing(ctx) as (conn, actor):
        changed = nodes.set_node(conn, actor=actor, name=name,
                                   sip_address=sip_address or None)
    output.note(f"updated node {name}" if changed else f"node {name}: nothing to change")


@model_app.command("add", help=_help(
    "Add a phone model to the catalog.",
    'model add "Yealink T46U" --vendor Yealink --kind hardphone --profile yealink'))
def model_add(
    ctx: typer.Context,
    name: str,
    vendor: Annotated[str, typer.Option(help="Maker; Cisco phones must sit at position 0.")],
    kind: Annotated[Kind, typer.Option(help="What kind of device it is.")],
    qr: Annotated[bool, typer.Option("--qr", help="Can be provisioned by QR code.")] = False,
    profile: Annotated[Profile | None, typer.Option(
        help="How its phones are provisioned: linphone (QR), cisco-mpp or yealink (by MAC, "
             "from mtctl serve's /d/).")] = None,
) -> None:
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_model(conn, actor=actor, name=name, vendor=vendor, kind=kind.value,
                          qr_provisionable=qr, profile=profile.value if profile else None)
    output.note(f"added model {name}")


@template_app.command("add", help=_help(
    "Add a phone template.", "template add mobile --key-lifetime 30 --secure"))
def template_add(
    ctx: typer.Context,
    name: str,
    for_webcall: Annotated[bool, typer.Option("--for-webcall",
                                              help="Template for Web Call phones.")] = False,
    key_lifetime: Annotated[int | None, typer.Option(
        metavar="DAYS", help="Key lifetime of secure phones using it (1–36500).",
        parser=whole_number("--key-lifetime", 1, 36_500, "use 1 to 36500 days"))] = None,
    category: Annotated[str | None, typer.Option(help="Default category of its phones.")] = None,
    secure: Annotated[bool, typer.Option("--secure", help="Its phones are secure.")] = False,
) -> None:
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_template(conn, actor=actor, name=name, for_webcall=for_webcall,
                             key_lifetime_days=key_lifetime, category_name=category,
                             secure=secure)
    output.note(f"added template {name}")


@template_app.command("set", help=_help(
    "Change a template: what phones added with it get, and their key lifetime.",
    "template set mobile --key-lifetime 60 --category national"))
def template_set(
    ctx: typer.Context,
    name: str,
    key_lifetime: Annotated[int | None, typer.Option(
        metavar="DAYS", help="Key lifetime of secure phones using it (1–36500; 0: the global "
        "keys.lifetime_days).",
        parser=whole_number("--key-lifetime", 0, 36_500, "use 1 to 36500 days, or 0"))] = None,
    category: Annotated[str | None, typer.Option(
        metavar="C", help="Default category of its phones; '' clears.")] = None,
    secure: Annotated[bool | None, typer.Option(
        "--secure/--not-secure", help="Whether phones added with it are secure.")] = None,
) -> None:
    from mtctl.domain.updates import UNCHANGED, TemplateUpdate, clearable, option
    from mtctl.store import catalog

    # --key-lifetime 0: back to the global keys.lifetime_days
    change = TemplateUpdate(
        key_lifetime_days=UNCHANGED if key_lifetime is None else (key_lifetime or None),
        category=clearable(category), secure=option(secure))
    with writing(ctx) as (conn, actor):
        changes = catalog.set_template(conn, actor=actor, name=name, change=change)
    output.note(f"updated template {name}" if changes else f"template {name}: nothing to change")


def _show(entry: Entry, shape: output.Shape) -> Callable[..., None]:
    def show(ctx: typer.Context, name: str, fmt: FormatOpt = None, fields: FieldsOpt = None,
             as_json: JsonOpt = False) -> None:
        from mtctl.store import catalog, nodes

        with reading(ctx) as conn:
            item = (nodes.show_node if entry.what == "node" else catalog.SHOWS[entry.what])(
                conn, name)
        output.record(item, shape, output.style(fmt, fields, as_json))

    return show


@group_app.command("add-ext", help=_help("Add Web Call extensions to a group.",
                                         "group add-ext webcall-pool 40790 40791"))
def group_add_ext(ctx: typer.Context, name: GroupName, numbers: Numbers) -> None:
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_group_extensions(conn, actor=actor, name=name, numbers=numbers)
    output.note(f"group {name}: added {', '.join(numbers)}")


@group_app.command("rm-ext", help=_help(
    "Take Web Call extensions out of a group; their pool users' sessions on them end.",
    "group rm-ext webcall-pool 40791"))
def group_rm_ext(ctx: typer.Context, name: GroupName, numbers: Numbers) -> None:
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.remove_group_extensions(conn, actor=actor, name=name, numbers=numbers)
    output.note(f"group {name}: removed {', '.join(numbers)}")


def register(app: typer.Typer) -> None:
    for entry in CATALOG:
        sub = APPS[entry.what]
        if entry.plain_add:
            sub.command("add", help=_help(entry.plain_add, f"{entry.what} add {entry.example}"))(
                _add_command(entry))
        sub.command("list", help=_help(entry.list_help, f"{entry.what} list --json"))(
            _list_command(entry))
        sub.command("rm", help=_help(entry.rm_help, f"{entry.what} rm {entry.example}"))(
            _rm_command(entry))
        if entry.shown is not None:
            what = ("its SIP address, its extensions and phones, and how many phones are "
                    "registered at it now" if entry.what == "node"
                    else "whether it is seeded and how many phones use it")
            sub.command("show", help=_help(f"Show a {entry.what}: {what}.",
                                           f"{entry.what} show {entry.example} --json"))(
                _show(entry, entry.shown))
        app.add_typer(sub, name=entry.what)
