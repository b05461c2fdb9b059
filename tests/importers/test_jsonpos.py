import json

import pytest

from nsgsolve.errors import InputError
from nsgsolve.importers.jsonpos import JArray, JObject, parse


def test_values_equal_the_json_module_and_containers_are_dicts_and_lists():
    text = '{"a": [1, 2.5, -3e2, true, false, null, "x\\u00e9\\n"], "b": {"c": "\\ud83d\\ude00"}}'
    v = parse(text, "f.json")
    assert v == json.loads(text)
    assert isinstance(v, JObject) and isinstance(v["a"], JArray)


def test_spans_point_at_each_value():
    text = '{\n  "name": "nsg1",\n  "rules": [\n    {"p": 100},\n    {"p": 200}\n  ]\n}'
    v = parse(text, "f.json")
    s = v.span_of("name")
    assert (s.file, s.line, s.column) == ("f.json", 2, 11)
    assert v["rules"].span_of(1).line == 5
    assert v["rules"][1].span_of("p").column == 11


def test_bom_and_crlf_do_not_shift_positions():
    text = '\ufeff{\r\n  "a": 1,\r\n  "b": "x"\r\n}\r\n'
    v = parse(text, "f.json")
    assert v == {"a": 1, "b": "x"}
    assert (v.span_of("b").line, v.span_of("b").column) == (3, 8)


def test_comments_are_accepted_as_arm_does():
    assert parse('{ // a comment\n "a": /* inline */ 1 }', "f") == {"a": 1}


@pytest.mark.parametrize("text,line,col", [
    ('{"a": 1,\n "b" 2}', 2, 6),
    ('{"a": [1, 2}', 1, 12),
    ('{"a": "unterminated', 1, 7),
    ('{"a": 1} extra', 1, 10),
])
def test_invalid_json_names_line_and_column(text, line, col):
    with pytest.raises(InputError) as e:
        parse(text, "bad.json")
    d = e.value.diagnostics[0]
    assert d.code == "E601"
    assert (d.span.file, d.span.line, d.span.column) == ("bad.json", line, col)


def test_duplicate_key_is_an_error_at_the_second():
    text = '{\n  "name": "a",\n  "props": 1,\n  "name": "b"\n}'
    with pytest.raises(InputError) as e:
        parse(text, "f.json")
    d = e.value.diagnostics[0]
    assert d.code == "E626" and "'name' appears twice" in d.message and "line 2" in d.message
    assert (d.span.file, d.span.line, d.span.column) == ("f.json", 4, 3)
    assert parse('{"a": {"x": 1}, "b": {"x": 2}}', "f.json") == {"a": {"x": 1}, "b": {"x": 2}}
