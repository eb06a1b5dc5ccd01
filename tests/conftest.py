"""Fixtures: a fresh store per test on SQLite, and on PostgreSQL too when MTCTL_TEST_DATABASE_URL
is set."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.main import get_command
from typer.testing import CliRunner

from mtctl.cli import output
from mtctl.cli.app import app
from mtctl.store.db import upgrade_store

PG_ENV = "MTCTL_TEST_DATABASE_URL"
COMMAND = get_command(app)
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(PG_ENV) else [])


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI, PostgreSQL is part of the suite: unreachable means failure, not a skip."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.exit(f"CI=true but {PG_ENV} is not set", returncode=1)
        return
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach it ends the run
        pytest.exit(f"PostgreSQL at {PG_ENV} is unreachable: {exc}", returncode=1)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (running migrations per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_store(f"sqlite:///{path}")
    return path


def pg_schema_url(base: str, schema: str) -> str:
    """The same PostgreSQL database, with every name resolved in SCHEMA."""
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema() -> Iterator[Callable[[], str]]:
    """Make empty PostgreSQL schemas for a test and drop them afterwards."""
    base = os.environ[PG_ENV]
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return pg_schema_url(base, schema)

    yield make
    with engine.connect() as conn:
        for schema in made:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A store URL with nothing in it (not migrated)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("pg_schema")()


def migrated_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                   name: str = "mtctl.db") -> str:
    """The URL of a fresh, migrated store on BACKEND (SQLite: tmp_path/NAME)."""
    if backend == "sqlite":
        path = tmp_path / name
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_schema")()
    upgrade_store(url)
    return url


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated store for this test."""
    return migrated_store(backend, tmp_path, request)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Mtctl:
    """Runs mtctl in-process against one store, as a user would from the shell."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        # What CliRunner.invoke(app, ..., catch_exceptions=False) does, minus rebuilding the
        # Click command from the Typer app on every call (most of a command's time in tests).
        output.reset()
        try:
            with self.runner.isolation(input=input, env=env) as (out, err, _):
                try:
                    COMMAND.main(["--db", self.url, "--actor", "tester", *args], prog_name="mtctl")
                    exit_code = 0
                except SystemExit as exc:
                    exit_code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
                sys.stdout.flush()
                sys.stderr.flush()
                result = Result(exit_code, out.getvalue().decode(), err.getvalue().decode())
        finally:
            output.reset()
        return result

    def ok(self, *args: str, input: str | None = None) -> Result:
        """Run and insist on exit 0."""
        result = self(*args, input=input)
        assert result.exit_code == 0, (args, result.output)
        return result


@pytest.fixture
def mtctl(db_url: str) -> Mtctl:
    return Mtctl(db_url)


@pytest.fixture
def seeded(mtctl: Mtctl) -> Mtctl:
    """The seed's multiterminal example: ana on 40710, desk phone at 0, Web Call at 1."""
    mtctl.ok("config", "set", "sip.domain", "pbx.example.com")
    mtctl.ok("node", "add", "madrid")
    mtctl.ok("ext", "add", "40710", "--node", "madrid", "--name", "Desk 40710")
    mtctl.ok("phone", "add", "40710", "--position", "0", "--model", "Cisco 8841",
             "--location", "Madrid")
    mtctl.ok("phone", "add", "40710", "--position", "1", "--model", "VIVAit Call Web")
    mtctl.ok("user", "add", "ana", "--name", "Ana García", "--login", "40710",
             "--webcall-mode", "multiterminal", "--webcall-position", "1")
    return mtctl
