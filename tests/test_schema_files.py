"""The output schemas are generated from the typed shapes, valid, and shipped in the wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mtctl import schema_files

ROOT = Path(__file__).resolve().parents[1]


def test_the_checked_in_schemas_are_generated_from_the_shapes():
    assert schema_files.stale() == [], (
        "stale schemas: regenerate them with: python -m mtctl.schema_files")


def test_the_check_command_agrees():
    result = subprocess.run([sys.executable, "-m", "mtctl.schema_files", "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_a_stale_schema_is_named_and_rewritten(tmp_path):
    schema_files.write(tmp_path)
    assert schema_files.stale(tmp_path) == []
    (tmp_path / "phone.schema.json").write_text("{}\n")
    (tmp_path / "user.schema.json").unlink()
    assert schema_files.stale(tmp_path) == ["phone.schema.json", "user.schema.json"]
    assert schema_files.write(tmp_path) == ["phone.schema.json", "user.schema.json"]
    assert schema_files.stale(tmp_path) == []


@pytest.mark.parametrize("path", sorted((ROOT / "schemas").glob("*.schema.json")),
                         ids=lambda p: p.name)
def test_every_schema_is_a_valid_draft_2020_12_schema(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith("/" + path.name)


def test_top_level_schemas_is_the_packaged_folder():
    assert (ROOT / "schemas").resolve() == (ROOT / "mtctl" / "schemas").resolve()
    packaged = resources.files("mtctl") / "schemas" / "phone.schema.json"
    assert json.loads(packaged.read_text(encoding="utf-8"))["title"] == "mtctl phone"


@pytest.mark.slow
def test_the_wheel_ships_every_schema(tmp_path):
    """Build the wheel as a release would (from a copy: a build leaves files behind) and look
    inside it."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "mtctl", source / "mtctl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("mtctl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"mtctl/schemas/{p.name}" for p in (ROOT / "schemas").glob("*.schema.json")}
    assert len(expected) >= len(schema_files.PUBLIC) + 1  # and the config file's schema
    assert expected <= names, sorted(expected - names)
