"""The declarative PBX file: its schema, its parser and where its problems are."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mtctl.domain.problems import format_path
from mtctl.formats.pbx_file.load import add_lines, parse_config
from mtctl.formats.pbx_file.schema import schema_text, setting_types
from mtctl.formats.toml_locator import Locator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "mtctl-config.schema.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def test_the_checked_in_schema_is_generated_from_the_loader():
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "schemas/mtctl-config.schema.json is stale; regenerate it with: "
        "python -m mtctl.formats.pbx_file > schemas/mtctl-config.schema.json")


def test_the_schema_regenerates_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "mtctl.formats.pbx_file"],  # noqa: S603
                            capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout == schema_text()


def test_the_schema_is_valid_and_accepts_every_example():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert len(EXAMPLES) >= 3
    for example in EXAMPLES:
        Draft202012Validator(schema).validate(tomllib.loads(example.read_text(encoding="utf-8")))


@pytest.mark.parametrize("doc", [
    {"extensions": {"40a": {"node": "m"}}},
    {"extensions": {"40710": {"node": "m", "colour": "red"}}},
    {"extensions": {"40710": {"node": "m", "phones": [{"position": 0, "model": "x",
                                                         "order": "3"}]}}},
    {"users": {"ana": {"name": "Ana", "login": "40710", "webcall_mode": "sometimes"}}},
    {"setting": {}},
])
def test_the_schema_refuses_what_the_loader_refuses(doc):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(doc))
    assert parse_config(_toml(doc)).problems


def _toml(doc: dict) -> str:
    import tomli_w

    return tomli_w.dumps(doc)


def test_every_setting_of_mtctl_config_can_be_in_the_file():
    from mtctl.store.config import KEYS

    assert set(setting_types()) == set(KEYS)


def test_examples_parse_without_problems():
    for example in EXAMPLES:
        parsed = parse_config(example.read_bytes())
        assert parsed.problems == [], example


def test_the_fast_parser_reads_what_tomllib_reads():
    import toml_rs

    texts = [e.read_text(encoding="utf-8") for e in EXAMPLES] + [
        'a = 1979-05-27T07:32:00Z\nb = 0x1F\nc = "\\u00e9\\t"\nd = \'\'\'x\ny\'\'\'\n'
        '[t."quoted key".x]\ne = [1, [2, 3], { f = 4 }]\n']
    for text in texts:
        assert toml_rs.loads(text, toml_version="1.0.0") == tomllib.loads(text)


@pytest.mark.parametrize("text", [
    'a = { b = 1,\n c = 2 }\n',  # newlines in inline tables: TOML 1.1 only
    'a = { b = 1, }\n',  # a trailing comma in an inline table: TOML 1.1 only
    'a = "\\e"\n',  # \e: TOML 1.1 only
    '[a]\nb = 1\n[a]\nc = 2\n',
])
def test_the_fast_parser_refuses_what_tomllib_refuses(text):
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(text)
    parsed = parse_config(text)
    assert parsed.problems and parsed.problems[0].message.startswith(("invalid TOML", "a "))


def test_deep_nesting_is_a_problem_not_a_crash():
    # toml-rs has no recursion limit (a stack overflow kills the process), so nesting is
    # refused before parsing; a child process keeps a crash from taking the suite down.
    code = ("import sys; from mtctl.formats.pbx_file.load import parse_config; "
            "p = parse_config('a = ' + '[' * 100000 + ']' * 100000); "
            "print(p.problems[0].line, p.problems[0].message)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1 nested more than 64 deep\n"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("nodes = []\nzz." + ".".join(["a"] * 200_000) + " = 1\n", 2, "more than 64 dotted"),
    ("[extensions." + ".".join(["a"] * 200_000) + "]\n", 1, "more than 64 dotted"),
    ('a = { b = "[[[", c = [' + "{d = [" * 40 + "]}" * 40 + "]}\n", 1, "nested more than 64"),
    ("# " + "[" * 100 + "\nx = 1\n" + "a." * 70 + "b = 2\n", 3, "more than 64 dotted"),
])
def test_files_over_the_limits_are_refused_with_their_line(text, line, message):
    [problem] = parse_config(text).problems
    assert (problem.line, message in problem.message) == (line, True), problem


@pytest.mark.parametrize("text", [
    'nodes = ["' + "[" * 500 + '", "' + "." * 100 + '"]\n',  # brackets and dots in strings
    "# " + "." * 200 + "\n" + "# " + "{" * 200 + "\nnodes = []\n",  # and in comments
    'nodes = [\n"""' + "." * 100 + '\n' + "[" * 100 + '"""]\n',  # multi-line strings
    "nodes = [" + "[" * 30 + "]" * 30 + "]\n",  # deep enough, but within the limit
])
def test_only_real_nesting_and_dotted_keys_count(text):
    problems = parse_config(text).problems
    assert all("nested" not in p.message and "dotted" not in p.message for p in problems)
    tomllib.loads(text)


def test_a_long_key_is_refused_and_shown_short():
    [problem] = parse_config('[models."' + "x" * 5000 + '"]\nkind = "app"\n').problems
    assert "5000 characters" in problem.message
    assert problem.location == 'models."' + "x" * 40 + '…"'


@pytest.mark.parametrize(("key", "refused"), [
    ("x" * 1024, False), ("x" * 1025, True),
    ("é" * 1024, False), ("é" * 1025, True),  # two bytes each: the limit is in characters
    ("日" * 600, False), ("😀" * 1025, True),
])
def test_the_key_length_limit_counts_characters_not_bytes(key, refused):
    problems = parse_config(f'[models."{key}"]\nkind = "app"\n').problems
    assert any("characters (the limit is 1024)" in p.message for p in problems) == refused


def test_a_file_over_the_size_limit_is_refused_unread():
    [problem] = parse_config(b"nodes = []\n" * 100, max_bytes=1000).problems
    assert (problem.line, problem.message) == (1, "the file is larger than 1000 bytes")
    assert "--max-size" in problem.hint


@pytest.mark.parametrize(("data", "expected"), [
    (b"\xef\xbb\xbfnodes = []\r\n", []),  # a byte order mark and CRLF are fine
    (b"", []),
    (b'nodes = ["a"]\nx = "\xff"\n', [(2, "invalid TOML: not UTF-8 text (byte 0xff at "
                                            "column 6)")]),
    (b'nodes = ["a"]\n\x00\n', [(2, "invalid TOML")]),
    (b'[extensions.40710]\nnode = "m"\nphones = [{position = 0, position = 1, model = "x"}]\n',
     [(3, "position is defined twice in one inline table")]),
])
def test_byte_level_damage_is_located(data, expected):
    problems = parse_config(data).problems
    assert [(p.line, p.message[:len(m)]) for p, (_, m) in zip(problems, expected, strict=False)
            ] == expected


def test_a_duplicate_extension_names_both_lines():
    text = '[extensions.40710]\nnode = "m"\n\n[extensions."40710"]\nnode = "m"\n'
    parsed = parse_config(text)
    [problem] = parsed.problems
    assert problem.line == 4
    assert "extension 40710" in problem.message and "first at line 1" in problem.message
    assert problem.text("pbx.toml").startswith("pbx.toml:4: ")


def test_a_key_defined_twice_names_the_key_and_both_lines():
    parsed = parse_config('[extensions.40710]\nnode = "m"\nname = "a"\nnode = "n"\n')
    [problem] = parsed.problems
    assert problem.line == 4
    assert 'extensions."40710".node' in problem.message
    assert "first at line 2" in problem.message


def test_schema_problems_carry_their_path_line_and_rule():
    text = """nodes = ["m"]

[extensions.40710]
node = "m"
phones = [
    { position = 0, model = "Cisco 8841" },
    { position = 9, model = "Cisco 8841", order = "3" },
]
"""
    problems = add_lines(parse_config(text).problems, text)
    found = {(p.location, p.line, p.rule) for p in problems}
    assert found == {('extensions."40710".phones[1].position', 7, "MT002"),
                     ('extensions."40710".phones[1].order', 7, None)}
    order = next(p for p in problems if p.location.endswith("order"))
    assert 'not the string "3"' in order.message


def test_secrets_are_refused_with_the_reason():
    problems = parse_config('[extensions.40710]\nnode = "m"\nphones = [{ position = 0, '
                            'model = "x", ha1 = "00" }]\n').problems
    assert [p.location for p in problems] == ['extensions."40710".phones[0].ha1']
    assert "MT011" in problems[0].hint


def test_an_unknown_key_suggests_the_known_one():
    [problem] = parse_config('[users.ana]\nname = "A"\nlogin = "1"\nwebcall_mod = "x"\n'
                             ).problems
    assert problem.location == "users.ana.webcall_mod"
    assert "webcall_mode" in problem.hint


def test_web_call_options_need_a_web_call_mode():
    [problem] = parse_config('[users.ana]\nname = "A"\nlogin = "1"\nwebcall_position = 1\n'
                             ).problems
    assert problem.location == "users.ana.webcall_position"


def test_not_utf8_is_a_problem_with_a_line():
    [problem] = parse_config(b'nodes = ["m"]\nx = "\xff"\n').problems
    assert problem.line == 2 and "UTF-8" in problem.message


def test_paths_are_written_as_in_toml():
    assert format_path(("extensions", "40710", "phones", 2, "order")) == \
        'extensions."40710".phones[2].order'
    assert format_path(("models", "Cisco 8841", "kind")) == 'models."Cisco 8841".kind'
    assert format_path(("users", "ana")) == "users.ana"
    # Unprintable characters escaped as TOML does: an error stays one line, and valid TOML.
    path = format_path(("settings", "sip\u2028", "x\x85\ufeff"))
    assert path == 'settings."sip\\u2028"."x\\u0085\\ufeff"'
    assert tomllib.loads(f"{path} = 1") == {"settings": {"sip\u2028": {"x\x85\ufeff": 1}}}


LOCATED = '''# a comment [not.a.header]
nodes = [
    "madrid",
    "sevilla",
]

[settings]
sip.domain = "pbx.example.com"

[models."Acme X"]
kind = "app"
vendor = """multi
line = "not a key"
"""
qr = true

[extensions.40710]
node = "madrid"
phones = [
    { position = 0, model = "Cisco 8841" },
    { position = 1, model = "VIVAit Call Web", order = 2 },
]

[[extensions.40711.phones]]
position = 0
model = "Cisco 8841"

[[extensions.40711.phones]]
position = 1
order = 0

[users.ana]
name = "Ana"
login = "40710"
webcall_extensions = ["40711", "40712"]
'''


@pytest.mark.parametrize(("path", "line"), [
    (("nodes",), 2),
    (("nodes", 1), 4),
    (("settings", "sip", "domain"), 8),
    (("models", "Acme X"), 10),
    (("models", "Acme X", "qr"), 15),
    (("extensions", "40710", "node"), 18),
    (("extensions", "40710", "phones", 1), 21),
    (("extensions", "40710", "phones", 1, "order"), 21),
    (("extensions", "40710", "phones", 7, "order"), 19),  # no such phone: the array
    (("extensions", "40711", "phones", 1, "order"), 30),
    (("extensions", "40711", "phones", 1), 28),
    (("extensions", "40711"), 24),  # only its phones have headers: the first of them
    (("users", "ana", "webcall_extensions", 1), 35),
    (("users", "ana", "missing"), 32),
    (("users", "bob"), 32),  # not in the file: where users are
    (("extensions",), 17),
])
def test_the_locator_finds_the_line_of_a_path(path, line):
    assert Locator(LOCATED).line_of(path) == line
