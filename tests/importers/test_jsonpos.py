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


# ---------------------------------------------------------------- the fast path equals the reader

def _spans(value, path="$"):
    """Every span the document carries, by path, read through the public interface."""
    from nsgsolve.importers.jsonpos import JArray, JObject

    out = {}
    if isinstance(value, JObject):
        out[path] = value.span
        for k, v in value.items():
            out[f"{path}.{k}"] = value.span_of(k)
            out[f"{path}.{k}/spans"] = value.spans[k]
            out.update(_spans(v, f"{path}.{k}"))
    elif isinstance(value, JArray):
        out[path] = value.span
        for i, v in enumerate(value):
            out[f"{path}[{i}]"] = value.span_of(i)
            out[f"{path}[{i}]/spans"] = value.spans[i]
            out.update(_spans(v, f"{path}[{i}]"))
    return out


def _json_files():
    from corpus import CORPUS, ROOT

    roots = [ROOT / "tests", ROOT / "examples"] + ([CORPUS] if CORPUS else [])
    # The 4 MB service tags download is left out: read with json alone, and 30 s of span comparisons here.
    return sorted({p for r in roots for p in r.rglob("*.json") if p.stat().st_size < 1_000_000})


def test_the_fast_path_gives_the_readers_values_and_spans_on_every_json_file_here():
    """Values from json.loads and positions found on demand equal the position-tracking reader's, span for
    span (compared as plain tuples), on every JSON file of the tests, examples and corpus."""
    from nsgsolve.importers.jsonpos import LazySpan, _parse_slowly

    files = _json_files()
    assert len(files) > 20
    lazy_seen = 0
    for p in files:
        text = p.read_text(encoding="utf-8")
        try:
            slow = _parse_slowly(text.removeprefix("\ufeff"), str(p))
        except InputError:
            continue
        fast = parse(text, str(p))
        assert fast == slow, p
        a, b = _spans(fast), _spans(slow)
        assert a.keys() == b.keys(), p
        for k in a:
            lazy_seen += type(a[k]) is LazySpan
            assert (a[k].file, a[k].line, a[k].column, a[k].end_line, a[k].end_column) == \
                (b[k].file, b[k].line, b[k].column, b[k].end_line, b[k].end_column), (p, k)
            assert a[k] == b[k] and b[k] == a[k] and hash(a[k]) == hash(b[k]) and str(a[k]) == str(b[k])
    assert lazy_seen > 1000  # the fast path ran (the reader's spans are plain)


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}',  # duplicate name
    '{"a": NaN}', '[Infinity]', '[-Infinity]',  # json.loads takes these; JSON does not
    '{"a": 1} // trailing comment',
    "[" * 200 + "]" * 200,  # too deep
    "[" * 5000 + "]" * 5000,  # deeper than json.loads recurses
    '{"n": 1234567890123456789012345678901234567890}',  # a number int() would refuse at 4,300 digits
    '["\\ud83d\\ude00", "\\ud800x", "a\\/b"]',
])
def test_what_the_fast_path_declines_or_reads_specially_matches_the_reader(text):
    from nsgsolve.importers.jsonpos import _parse_slowly

    try:
        want = _parse_slowly(text, "f.json")
    except InputError as e:
        with pytest.raises(InputError) as got:
            parse(text, "f.json")
        assert [str(d) for d in got.value.diagnostics] == [str(d) for d in e.diagnostics]
        assert [(d.code, d.span) for d in got.value.diagnostics] == [(d.code, d.span) for d in e.diagnostics]
        return
    got_v = parse(text, "f.json")
    assert got_v == want and _scalar_types(got_v) == _scalar_types(want)
    assert _spans(got_v) == _spans(want)


def _scalar_types(v):
    if isinstance(v, dict):
        return {k: _scalar_types(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_scalar_types(x) for x in v]
    return type(v)


def test_a_lazy_span_pickles_and_copies_as_the_plain_span():
    import copy
    import pickle

    from nsgsolve.importers.jsonpos import LazySpan
    from nsgsolve.model import Span

    v = parse('{\n "a": [1,\n  {"b": "x"}]}', "f.json")
    s = v["a"][1].span_of("b")
    assert type(s) is LazySpan
    for t in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert type(t) is Span and t == Span("f.json", 3, 9, 3, 12)
    assert repr(s) == repr(Span("f.json", 3, 9, 3, 12))
