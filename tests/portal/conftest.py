"""The user portal's fixtures: the seed's portal example in a fresh store, `mtctl serve` on a free
loopback port (its log kept for the tests to search), and a plain HTTP client with cookies."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Mtctl

EXAMPLE = Path(__file__).parents[2] / "examples" / "portal.sh"
HOST = "127.0.0.1"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def build_example(mtctl: Mtctl) -> None:
    """examples/portal.sh, command by command, in the test's store."""
    for line in EXAMPLE.read_text().splitlines():
        if line.startswith("mtctl ") and "db upgrade" not in line:
            import shlex

            mtctl.ok(*shlex.split(line)[1:])


class Server:
    """`mtctl serve` as a user runs it, on a free loopback port; stop() keeps its whole log."""

    def __init__(self, url: str, *extra: str) -> None:
        self.port = free_tcp_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log = ""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mtctl", "--db", url, "serve", "--port", str(self.port),
             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"mtctl serve did not start: {self.log}")
            time.sleep(0.1)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.log += out or ""
        return self.log


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


@dataclass
class Response:
    status: int
    body: str
    headers: dict[str, str]
    cookies: list[str]


class Client:
    """A browser without JavaScript: cookies, forms, no automatic redirects."""

    def __init__(self, server: Server, lang: str = "en") -> None:
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())
        self.lang = lang

    def request(self, path: str, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, data: bytes | None = None) -> Response:
        """GET PATH, or POST FORM (urlencoded) or DATA (bytes as they are)."""
        url = path if path.startswith("http") else self.server.base + path
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(url, data=data, headers={
            "Accept-Language": self.lang, **(headers or {})})
        try:
            with self.opener.open(request, timeout=15) as response:
                return Response(response.status, response.read().decode(),
                                {k.lower(): v for k, v in response.headers.items()},
                                response.headers.get_all("set-cookie") or [])
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read().decode(),
                            {k.lower(): v for k, v in exc.headers.items()},
                            exc.headers.get_all("set-cookie") or [])

    def get(self, path: str, **kw: dict[str, str]) -> Response:
        return self.request(path, **kw)

    def post(self, path: str, form: dict[str, str] | None = None) -> Response:
        return self.request(path, form=form or {})

    def login(self, link: str) -> Response:
        page = self.get(link)
        assert page.status == 200, page.body
        response = self.post(link)
        assert response.status == 303, response.body
        return response

    def csrf(self, path: str = "/portal/") -> str:
        page = self.get(path)
        found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.body)
        assert found, page.body
        return found.group(1)


@pytest.fixture
def example(mtctl: Mtctl) -> Mtctl:
    """The seed's portal example (examples/portal.sh) with a second user, bo, on 40720."""
    build_example(mtctl)
    mtctl.ok("ext", "add", "40720", "--node", "madrid", "--name", "Bo 40720")
    mtctl.ok("phone", "add", "40720", "--position", "0", "--model", "Linphone (no proxy)",
             "--location", "Sevilla")
    mtctl.ok("phone", "add", "40720", "--position", "1", "--model",
             "VIVAit Call Business Android", "--secure")
    mtctl.ok("user", "add", "bo", "--name", "Bo Pérez", "--login", "40720")
    return mtctl


@pytest.fixture
def served(example: Mtctl) -> Iterator[tuple[Mtctl, Server]]:
    """The example behind a running `mtctl serve`, its settings pointing at it."""
    server = Server(example.url)
    try:
        example.ok("config", "set", "portal.base_url", server.base + "/portal")
        example.ok("config", "set", "provisioning.base_url", server.base)
        yield example, server
    finally:
        server.stop()


def link_for(mtctl: Mtctl, username: str) -> str:
    return mtctl.ok("user", "login-link", username).stdout.strip()


SPANISH = "es-ES,es;q=0.9"


def spanish_ana_with_webcall_at_3(mtctl: Mtctl, server: Server) -> Client:
    """ana in multiterminal mode with her Web Call phone at 40710:3, logged in from a browser
    that asks for Spanish."""
    mtctl.ok("phone", "add", "40710", "--position", "3", "--model", "VIVAit Call Web")
    mtctl.ok("user", "set", "ana", "--webcall-mode", "multiterminal", "--webcall-position", "3")
    client = Client(server, lang=SPANISH)
    client.login(link_for(mtctl, "ana"))
    return client
