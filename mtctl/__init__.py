"""mtctl: administer Multiterminal PBX extensions."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """`mtctl.__version__`, read from the installed package's metadata (pyproject.toml is the
    one place the version is written) on first use, so start-up does not pay for it."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mtctl")
        except PackageNotFoundError:  # run from a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'mtctl' has no attribute {name!r}")
