"""Shell completion: the installed bash script completes names from the store in a real bash,
without SQLAlchemy, and completes nothing (never an error) from a broken store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MTCTL = Path(sys.executable).with_name("mtctl")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture
def store(mtctl):
    mtctl.ok("node", "add", "madrid")
    mtctl.ok("node", "add", "malaga")
    mtctl.ok("node", "add", "bilbao")
    for number in ("40710", "40720", "50100", "0407"):
        mtctl.ok("ext", "add", number, "--node", "madrid")
    mtctl.ok("user", "add", "ana", "--name", "Ana", "--login", "40710")
    mtctl.ok("user", "add", "andrés", "--name", "Andrés", "--login", "40720")
    mtctl.ok("user", "add", "bea", "--name", "Bea", "--login", "50100")
    return mtctl


def env_for(url: str | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_MTCTL")}
    env["HOME"] = str(home)
    env["PATH"] = f"{MTCTL.parent}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_DATA_HOME"] = str(home / "data")  # the default store: absent
    env.pop("MTCTL_DATABASE_URL", None)
    if url is not None:
        env["MTCTL_DATABASE_URL"] = url
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True,  # noqa: S603
                          timeout=60, check=False)


def bash_complete(env: dict[str, str], *words: str) -> list[str]:
    """What TAB offers after WORDS (the last one being completed), in an interactive bash
    that read the ~/.bashrc --install-completion wrote."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    script = (f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
              "complete -p mtctl >/dev/null || exit 9; "
              "_mtctl_completion mtctl; printf '%s\\n' \"${COMPREPLY[@]}\"")
    result = run(["bash", "-ic", script], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_install_completion_makes_bash_complete_extensions_users_and_nodes(store, tmp_path):
    env = env_for(store.url, tmp_path)
    # `; exit $?` keeps bash the parent of mtctl (a lone command would be exec'd in its
    # place): --install-completion finds the shell to install for by its parent process.
    installed = run(["bash", "-c", "mtctl --install-completion; exit $?"], env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "bash completion installed" in installed.stdout
    assert "mtctl" in (tmp_path / ".bashrc").read_text()

    assert bash_complete(env, "mtctl", "ext", "show", "407") == ["40710", "40720"]
    assert bash_complete(env, "mtctl", "ring-sim", "0") == ["0407"]
    assert bash_complete(env, "mtctl", "phone", "list", "5") == ["50100"]
    assert bash_complete(env, "mtctl", "user", "phones", "an") == ["ana", "andrés"]
    assert bash_complete(env, "mtctl", "ext", "list", "--node", "ma") == ["madrid", "malaga"]
    assert bash_complete(env, "mtctl", "ph") == ["phone"]  # commands, as Typer completes them
    # --db on the command line wins over the environment's store
    other = env_for(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path)
    assert bash_complete(other, "mtctl", "--db", store.url, "ext", "rm", "4") == \
        ["40710", "40720"]
    assert bash_complete(other, "mtctl", "ext", "rm", "4") == []


def test_a_prefix_is_matched_literally(store, tmp_path):
    env = env_for(store.url, tmp_path)
    # LIKE wildcards in what was typed are letters, not patterns
    assert complete_bash(env, "mtctl", "user", "show", "%") == []
    assert complete_bash(env, "mtctl", "user", "show", "_") == []
    assert complete_bash(env, "mtctl", "user", "show", "a") == ["ana", "andrés"]


def complete_bash(env: dict[str, str], *words: str) -> list[str]:
    """Typer's bash protocol, without a shell: what `_mtctl_completion` would receive."""
    env = {**env, "_MTCTL_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(words),
           "COMP_CWORD": str(len(words) - 1)}
    result = run([str(MTCTL)], env)
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("make", ["absent", "not-a-database", "not-migrated", "bad-url",
                                  "unreachable-postgresql"])
def test_a_broken_store_completes_nothing_and_is_left_alone(tmp_path, make):
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    if make == "not-a-database":
        path.write_bytes(b"this is no database\n" * 100)
    elif make == "not-migrated":
        import sqlite3

        sqlite3.connect(path).close()
    elif make == "bad-url":
        url = "mysql://nobody@localhost/none"
    elif make == "unreachable-postgresql":
        url = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # port 1: refused at once
    before = path.read_bytes() if path.exists() else None
    assert complete_bash(env_for(url, tmp_path), "mtctl", "ext", "show", "4") == []
    assert (path.read_bytes() if path.exists() else None) == before  # never created or changed


def test_completion_does_not_import_sqlalchemy(store, tmp_path):
    env = {**env_for(store.url, tmp_path), "_MTCTL_COMPLETE": "complete_bash",
           "COMP_WORDS": "mtctl ext show 4", "COMP_CWORD": "3"}
    result = run([sys.executable, "-X", "importtime", str(MTCTL)], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["40710", "40720"]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "typer" in imported
    assert not [name for name in imported if name.startswith("sqlalchemy")]


def test_zsh_and_fish_scripts_and_their_protocol(store, tmp_path):
    env = env_for(store.url, tmp_path)
    zsh = run([str(MTCTL)], {**env, "_MTCTL_COMPLETE": "source_zsh"})
    assert "compdef _mtctl_completion mtctl" in zsh.stdout, zsh.stdout + zsh.stderr
    fish = run([str(MTCTL)], {**env, "_MTCTL_COMPLETE": "source_fish"})
    assert "complete --command mtctl" in fish.stdout, fish.stdout + fish.stderr

    answer = run([str(MTCTL)], {**env, "_MTCTL_COMPLETE": "complete_zsh",
                                "_TYPER_COMPLETE_ARGS": "mtctl user show b"})
    assert answer.returncode == 0 and "bea" in answer.stdout, answer.stdout + answer.stderr
    answer = run([str(MTCTL)], {**env, "_MTCTL_COMPLETE": "complete_fish",
                                "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                                "_TYPER_COMPLETE_ARGS": "mtctl ext list --node b"})
    assert answer.stdout.split() == ["bilbao"], answer.stdout + answer.stderr
