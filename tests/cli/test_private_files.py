"""Files that hold a token or a key are private (0600) from creation, and whole or absent."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import uuid

import pytest
from sqlalchemy import create_engine, func, select

from mtctl.files import atomic_write
from mtctl.store.tables import provisioning_token


@pytest.fixture
def app_phone(seeded):
    seeded.ok("config", "set", "provisioning.base_url", "https://prov.example.com/p/")
    seeded.ok("phone", "add", "40710", "--position", "2", "--model",
              "VIVAit Call Business Android", "--secure", "--order", "3")
    return seeded


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _tokens(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(provisioning_token)).scalar_one()
    engine.dispose()
    return count


def test_qr_files_are_private_even_under_a_lax_umask_and_over_an_open_file(app_phone, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    png, svg = out / "qr.png", out / "qr.svg"
    png.write_bytes(b"an older, world-readable code")
    png.chmod(0o644)
    old_umask = os.umask(0)
    try:
        app_phone.ok("provision", "40710", "2", "--png", str(png), "--svg", str(svg))
    finally:
        os.umask(old_umask)
    assert (_mode(png), _mode(svg)) == (0o600, 0o600)
    assert png.read_bytes().startswith(b"\x89PNG") and b"<svg" in svg.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["qr.png", "qr.svg"]


def test_an_unwritable_place_issues_no_token_and_leaves_nothing(app_phone, db_url, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = app_phone("provision", "40710", "2", "--png", str(out / "no-dir" / "qr.png"))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "cannot write" in result.stderr and "no such file or directory" in result.stderr
    assert _tokens(db_url) == 0 and list(out.iterdir()) == []


def test_a_nul_in_a_file_name_is_one_clear_line(app_phone, db_url, tmp_path):
    # A shell cannot pass a NUL in argv, but a script calling mtctl in-process can.
    out = tmp_path / "out"
    out.mkdir()
    for args in (("provision", "40710", "2", "--svg", f"{out}/q\x00r.svg"),
                 ("apply", f"{out}/pbx\x00.toml"),
                 ("export", "-o", f"{out}/pbx\x00.toml")):
        result = app_phone(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "NUL" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert _tokens(db_url) == 0 and list(out.iterdir()) == []


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("x")  # a non-empty directory cannot be replaced by a file
    with pytest.raises(Exception, match="cannot write"):
        atomic_write(target, b"secret", private=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs, filled up; skipped where mounting is not allowed (not root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k",
                           f"tmpfs-{uuid.uuid4().hex[:8]}", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_clear_line_issues_no_token_and_leaves_no_file(app_phone, db_url,
                                                                          tiny_disk):
    for option, name in (("--png", "qr.png"), ("--svg", "qr.svg")):
        result = app_phone("provision", "40710", "2", option, str(tiny_disk / name))
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert "no space left on device" in result.stderr and name in result.stderr
        assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]
    assert _tokens(db_url) == 0
    # Room again: the same command works and the code is private.
    (tiny_disk / "filler").unlink()
    app_phone.ok("provision", "40710", "2", "--png", str(tiny_disk / "qr.png"))
    assert _mode(tiny_disk / "qr.png") == 0o600 and _tokens(db_url) == 1


def test_the_kamailio_config_with_the_store_password_is_private_from_creation(seeded, tmp_path):
    out = tmp_path / "kamailio"
    out.mkdir()
    (out / "kamailio.cfg").write_text("an older config")
    (out / "kamailio.cfg").chmod(0o644)
    old_umask = os.umask(0)
    try:
        seeded.ok("export", "kamailio", "--out", str(out))
    finally:
        os.umask(old_umask)
    assert _mode(out / "kamailio.cfg") == 0o600 and _mode(out / "README.md") == 0o644
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "kamailio.cfg"]


def test_a_full_disk_leaves_no_half_kamailio_config(seeded, tiny_disk):
    result = seeded("export", "kamailio", "--out", str(tiny_disk))
    assert result.exit_code == 1, result.output
    assert "no space left on device" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


def test_a_full_disk_leaves_no_partial_export(seeded, tiny_disk):
    result = seeded("export", "-o", str(tiny_disk / "pbx.toml"))
    assert result.exit_code == 1, result.output
    assert "no space left on device" in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["filler"]


# Streams and devices: written into, never replaced ------------------------------------------

def _reader(path, into: list) -> threading.Thread:
    """Read a FIFO to its end in a thread (opening it blocks until a writer comes)."""
    def read() -> None:
        with open(path, "rb") as stream:
            into.append(stream.read())
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_written_into_not_replaced(app_phone, tmp_path):
    """`export -o FIFO` and `provision --png FIFO` feed the reader, as `> FIFO` would; the
    FIFO stays a FIFO (before, a regular file was renamed over it and the reader hung)."""
    out = tmp_path / "out"
    out.mkdir()
    for args, start in ((("export", "-o"), b"nodes"), (("provision", "40710", "2", "--png"),
                                                       b"\x89PNG")):
        fifo = out / "fifo"
        os.mkfifo(fifo)
        got: list[bytes] = []
        reader = _reader(fifo, got)
        result = app_phone(*args, str(fifo))
        assert result.exit_code == 0, result.output
        reader.join(10)
        assert got and got[0].startswith(start), got
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert sorted(p.name for p in out.iterdir()) == ["fifo"]
        fifo.unlink()


def test_a_symlink_to_a_stream_is_written_into_not_replaced(app_phone, tmp_path):
    """`-o /dev/stdout` is a link to the process's stdout: the link stays, the data goes
    through it (a FIFO stands in for the pipe)."""
    fifo, link = tmp_path / "fifo", tmp_path / "stdout"
    os.mkfifo(fifo)
    link.symlink_to(fifo)
    got: list[bytes] = []
    reader = _reader(fifo, got)
    result = app_phone("export", "-o", str(link))
    assert result.exit_code == 0, result.output
    reader.join(10)
    assert got and b"nodes" in got[0]
    assert link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_full_device_is_one_clear_line_and_stays_a_device(app_phone, db_url, tmp_path):
    """A copy of /dev/full: the write fails with exit 1 and one line, no token is issued,
    and the device node is still there (it used to be replaced by a regular file, and the
    command said it had written it)."""
    out = tmp_path / "out"
    out.mkdir()
    full = out / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    for args in (("export", "-o", str(full)),
                 ("provision", "40710", "2", "--svg", str(full))):
        result = app_phone(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.count("\n") == 1 and "no space left on device" in result.stderr
        assert stat.S_ISCHR(os.lstat(full).st_mode)
    assert _tokens(db_url) == 0 and sorted(p.name for p in out.iterdir()) == ["full"]


def test_no_file_name_is_one_clear_line_and_writes_nothing(app_phone, db_url, tmp_path,
                                                            monkeypatch):
    """An empty --png/--svg was a traceback; an empty --out wrote kamailio.cfg and README.md
    into the current directory."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for args in (("provision", "40710", "2", "--png", ""),
                 ("provision", "40710", "2", "--svg", ""),
                 ("export", "kamailio", "--out", ""),
                 ("export", "kamailio", "--out", " ")):
        result = app_phone(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.output
    assert list(work.iterdir()) == [] and _tokens(db_url) == 0
