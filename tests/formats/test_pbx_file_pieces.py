"""A large config file is parsed a piece at a time: the same document and the same problems
as the whole file parsed at once, whatever the file holds."""

from __future__ import annotations

import pytest

from mtctl.formats.pbx_file import load
from mtctl.formats.pbx_file.load import add_lines, parse_config


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(load, "PIECE_CHARS", 300)


def _file(count: int, *, tail: str = "") -> str:
    lines = ['nodes = ["m"]\n', '[settings.sip]\ndomain = "pbx.example.com"\n']
    for i in range(count):
        number = 40000 + i
        if i % 2:
            lines.append(f'[extensions.{number}]\nnode = "m"\nname = "Desk {number}"\n'
                         f'phones = [{{ position = 0, model = "Cisco 8841" }}]\n')
        else:
            lines.append(f'[extensions."{number}"]\nnode = "m"\n\n[[extensions.{number}.phones]]\n'
                         f'position = 1\nmodel = "Linphone (no proxy)"\norder = {i % 3}\n')
    lines.append('[users.ana]\nname = "Ana"\nlogin = "40000"\n')
    return "\n".join(lines) + tail


def _whole(text: str, monkeypatch) -> load.ParsedConfig:
    with monkeypatch.context() as m:
        m.setattr(load, "_pieces", lambda text: None)
        return parse_config(text)


def _problems(parsed: load.ParsedConfig) -> list[tuple]:
    return [(p.path, p.message, p.hint, p.line) for p in add_lines(parsed.problems, parsed.text)]


def test_a_file_of_many_pieces_gives_the_document_of_the_whole(small_pieces, monkeypatch):
    text = _file(60)
    assert len(load._pieces(text) or []) > 10
    parsed = parse_config(text)
    assert not parsed.problems
    assert parsed.doc == _whole(text, monkeypatch).doc
    assert list(parsed.doc["extensions"]) == [str(40000 + i) for i in range(60)]


@pytest.mark.parametrize("tail", [
    '[extensions.40001]\nnode = "m"\n',  # an extension twice, pieces apart
    '[extensions.40055]\nnode = "m"\ncolour = "red"\n',  # a schema problem
    '[extensions.40070]\nnode = "m"\nnode = "n"\n',  # invalid TOML
    '[users.bo]\nname = "Bo"\nlogin = "40002"\n',  # users spread over the file: valid
    '[extensions]\n"1" = { node = "m" }\n',  # the extensions table itself
    'x = """\n[extensions.5]\n"""\n',  # a header-like line inside a string
    '[users.cy]\nname = "Cy"\nlogin = "40003"\nwebcall_position = 1\n',  # a file problem
])
def test_a_file_the_pieces_cannot_read_alone_is_read_whole(small_pieces, monkeypatch, tail):
    text = _file(40).replace('[users.ana]', tail + '\n[users.ana]', 1) \
        if tail.startswith("[users.") else _file(40, tail="\n" + tail)
    parsed = parse_config(text)
    whole = _whole(text, monkeypatch)
    assert parsed.doc == whole.doc
    assert parsed.broken == whole.broken
    assert _problems(parsed) == _problems(whole)


def test_users_spread_over_the_file_are_all_read(small_pieces):
    text = _file(30).replace("[extensions.40021]", '[users.bo]\nname = "Bo"\nlogin = "1"\n\n'
                             "[extensions.40021]", 1)
    parsed = parse_config(text)
    assert not parsed.problems
    assert set(parsed.doc["users"]) == {"ana", "bo"}
    assert len(parsed.doc["extensions"]) == 30
