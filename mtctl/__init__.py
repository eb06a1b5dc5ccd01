"""mtctl: administer Multiterminal PBX extensions."""

__version__ = "0.1.0"
