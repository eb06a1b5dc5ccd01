"""`mtctl node|category|model|template|group`: the catalog phones and extensions refer to."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from mtctl.cli import output
from mtctl.cli.common import JsonOpt, reading, whole_number, writing

node_app = typer.Typer(help="PBX servers.", no_args_is_help=True)
category_app = typer.Typer(help="Calling permission classes.", no_args_is_help=True)
model_app = typer.Typer(help="Phone models in the catalog.", no_args_is_help=True)
template_app = typer.Typer(help="Presets applied to phones.", no_args_is_help=True)
group_app = typer.Typer(help="Web Call groups: pools of Web Call extensions.",
                        no_args_is_help=True)


class Kind(StrEnum):
    hardphone = "hardphone"
    softphone = "softphone"
    app = "app"
    webcall = "webcall"


@node_app.command("add")
def node_add(ctx: typer.Context, name: str) -> None:
    """Add a PBX node.

    Example: mtctl node add madrid
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_node(conn, actor=actor, name=name)
    output.note(f"added node {name}")


@node_app.command("list")
def node_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List nodes with their number of extensions.

    Example: mtctl node list --json
    """
    from mtctl.store import catalog

    with reading(ctx) as conn:
        items = catalog.list_nodes(conn)
    output.rows(items, ["name", "extensions"], as_json=as_json, empty="no nodes")


@node_app.command("rm")
def node_rm(ctx: typer.Context, name: str) -> None:
    """Remove a node that no extension uses.

    Example: mtctl node rm madrid
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.remove_node(conn, actor=actor, name=name)
    output.note(f"removed node {name}")


@category_app.command("add")
def category_add(ctx: typer.Context, name: str) -> None:
    """Add a calling category.

    Example: mtctl category add national
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_category(conn, actor=actor, name=name)
    output.note(f"added category {name}")


@category_app.command("list")
def category_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List calling categories.

    Example: mtctl category list
    """
    from mtctl.store import catalog

    with reading(ctx) as conn:
        items = catalog.list_categories(conn)
    output.rows(items, ["name"], as_json=as_json, empty="no categories")


@category_app.command("rm")
def category_rm(ctx: typer.Context, name: str) -> None:
    """Remove a category that no phone or template uses.

    Example: mtctl category rm national
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.remove_category(conn, actor=actor, name=name)
    output.note(f"removed category {name}")


@model_app.command("add")
def model_add(
    ctx: typer.Context,
    name: str,
    vendor: Annotated[str, typer.Option(help="Maker; Cisco phones must sit at position 0.")],
    kind: Annotated[Kind, typer.Option(help="What kind of device it is.")],
    qr: Annotated[bool, typer.Option("--qr", help="Can be provisioned by QR code.")] = False,
) -> None:
    """Add a phone model to the catalog.

    Example: mtctl model add "Yealink T54W" --vendor Yealink --kind hardphone
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_model(conn, actor=actor, name=name, vendor=vendor, kind=kind.value,
                          qr_provisionable=qr)
    output.note(f"added model {name}")


@model_app.command("list")
def model_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List phone models.

    Example: mtctl model list --json
    """
    from mtctl.store import catalog

    with reading(ctx) as conn:
        items = catalog.list_models(conn)
    output.rows(items, ["name", "vendor", "kind", "qr_provisionable"], as_json=as_json,
                titles={"qr_provisionable": "QR"})


@template_app.command("add")
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
    """Add a phone template.

    Example: mtctl template add mobile --key-lifetime 30 --secure
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_template(conn, actor=actor, name=name, for_webcall=for_webcall,
                             key_lifetime_days=key_lifetime, category_name=category,
                             secure=secure)
    output.note(f"added template {name}")


@template_app.command("list")
def template_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List templates.

    Example: mtctl template list
    """
    from mtctl.store import catalog

    with reading(ctx) as conn:
        items = catalog.list_templates(conn)
    output.rows(items, ["name", "for_webcall", "secure", "key_lifetime_days", "category"],
                as_json=as_json, titles={"key_lifetime_days": "key lifetime (days)"})


@group_app.command("add")
def group_add(ctx: typer.Context, name: str) -> None:
    """Add a Web Call group (a pool of Web Call extensions).

    Example: mtctl group add webcall-pool
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_group(conn, actor=actor, name=name)
    output.note(f"added group {name}")


@group_app.command("add-ext")
def group_add_ext(ctx: typer.Context, name: str, numbers: list[str]) -> None:
    """Add Web Call extensions to a group.

    Example: mtctl group add-ext webcall-pool 40790 40791
    """
    from mtctl.store import catalog

    with writing(ctx) as (conn, actor):
        catalog.add_group_extensions(conn, actor=actor, name=name, numbers=numbers)
    output.note(f"group {name}: added {', '.join(numbers)}")


@group_app.command("list")
def group_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List Web Call groups and their extensions.

    Example: mtctl group list --json
    """
    from mtctl.store import catalog

    with reading(ctx) as conn:
        items = catalog.list_groups(conn)
    output.rows(items, ["name", "extensions"], as_json=as_json, empty="no groups")


def register(app: typer.Typer) -> None:
    app.add_typer(node_app, name="node")
    app.add_typer(category_app, name="category")
    app.add_typer(model_app, name="model")
    app.add_typer(template_app, name="template")
    app.add_typer(group_app, name="group")
