import io
import json

import pytest

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.errors import InputError
from nsgsolve.semantics.servicetags import ServiceTagDb, cached_file, default_tag_db, import_tag_file

DOC = {"changeNumber": 7, "cloud": "Public", "values": [
    {"name": "Storage", "id": "Storage", "properties": {"addressPrefixes": ["20.38.96.0/19", "2603:1000::/40"]}},
    {"name": "Storage.WestUS", "id": "Storage.WestUS", "properties": {"addressPrefixes": ["20.38.96.0/24"]}},
    {"name": "AzureFrontDoor.Frontend", "id": "AzureFrontDoor.Frontend",
     "properties": {"addressPrefixes": ["13.107.246.0/24", "2620:1ec:bdf::/48"]}},
]}


@pytest.fixture
def tagfile(tmp_path):
    f = tmp_path / "ServiceTags_Public.json"
    f.write_text("\ufeff" + json.dumps(DOC, indent=1).replace("\n", "\r\n"), encoding="utf-8")
    return f


def test_lookup_is_case_insensitive_and_ipv6_is_counted_not_modelled(tagfile):
    db = ServiceTagDb.from_json_file(tagfile)
    fd = db.lookup("azurefrontdoor.FrontEnd")
    assert fd.name == "AzureFrontDoor.Frontend" and fd.ipv6_count == 1
    assert list(fd.ipv4) == [(ip_to_int("13.107.246.0"), ip_to_int("13.107.246.255"))]
    assert db.lookup("STORAGE").ipv6_count == 1 and db.total_ipv6() == 2
    assert "changeNumber 7" in db.description


def test_import_caches_the_file_and_later_runs_find_it(tagfile):
    assert len(default_tag_db(None)) == 0
    db, target = import_tag_file(tagfile)
    assert target == cached_file() and target.is_file() and len(db) == 3
    assert default_tag_db(None).lookup("storage.westus") is not None


def test_explicit_file_is_merged_over_the_cache(tagfile, tmp_path):
    import_tag_file(tagfile)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"values": [{"name": "Storage", "properties": {"addressPrefixes": ["1.2.3.0/24"]}}]}))
    db = default_tag_db(str(newer))
    assert list(db.lookup("Storage").ipv4) == [(ip_to_int("1.2.3.0"), ip_to_int("1.2.3.255"))]
    assert db.lookup("Storage.WestUS") is not None  # the cache still supplies the others


def test_bad_files_are_input_errors(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"no": "values"}')
    with pytest.raises(InputError) as e:
        ServiceTagDb.from_json_file(bad)
    assert e.value.diagnostics[0].code == "E650"
    with pytest.raises(InputError):
        ServiceTagDb.from_json_file(tmp_path / "missing.json")


def test_tags_commands(tagfile, capsys):
    import argparse
    import io

    from nsgsolve.commands import tags

    parser = argparse.ArgumentParser()
    tags.register(parser.add_subparsers())
    out = io.StringIO()
    args = parser.parse_args(["tags", "import", str(tagfile)])
    assert args.func(args, out, io.StringIO()) == 0 and "cached at" in out.getvalue()
    out = io.StringIO()
    args = parser.parse_args(["tags", "show", "storage", "--all"])
    assert args.func(args, out, io.StringIO()) == 0
    assert "20.38.96.0/19" in out.getvalue() and "1 IPv6" in out.getvalue()
    from nsgsolve.errors import UsageError

    args = parser.parse_args(["tags", "show", "Storag"])
    with pytest.raises(UsageError) as e:
        args.func(args, io.StringIO(), io.StringIO())
    assert "Storage" in e.value.hint


def test_tags_show_without_any_tag_data_says_there_is_none():
    from nsgsolve.cli import run

    err = io.StringIO()
    assert run(["tags", "show", "Storage"], io.StringIO(), err) == 2
    text = err.getvalue()
    assert "no service tag data to look up 'Storage' in: nothing is cached and no --service-tags FILE was given" in text
    assert "in no tag data" not in text
    assert "nsgsolve tags import FILE" in text


@pytest.mark.parametrize(
    "entry, says",
    [
        (
            {"name": "Storage", "properties": {"addressPrefixes": "20.38.96.0/19"}},
            "tag Storage): properties.addressPrefixes must be a list",
        ),
        ({"name": "Storage", "properties": {"addressPrefixes": ["20.38.96.0/33"]}}, "tag Storage)"),
        ({"properties": {"addressPrefixes": ["20.38.96.0/19"]}}, "values[0] has no 'name'"),
    ],
)
def test_a_tag_entry_nsgsolve_cannot_read_stops_and_names_the_tag(tmp_path, entry, says):
    # Skipping an entry would make its addresses match nothing.
    f = tmp_path / "tags.json"
    f.write_text(json.dumps({"values": [entry]}))
    with pytest.raises(InputError) as e:
        ServiceTagDb.from_json_file(f)
    assert e.value.diagnostics[0].code == "E650" and says in e.value.diagnostics[0].message


def test_a_damaged_cache_says_how_to_repair_it(tagfile):
    import_tag_file(tagfile)
    cached_file().write_text("{not json")
    with pytest.raises(InputError) as e:
        default_tag_db(None)
    assert "cached service tag file is damaged" in e.value.diagnostics[0].message
    assert "nsgsolve tags import" in e.value.diagnostics[0].hint


def test_unwritable_places_are_usage_errors_not_tracebacks(tagfile, tmp_path, monkeypatch, capsys):
    from nsgsolve.cli import run

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NSGSOLVE_DATA_DIR", str(blocker / "sub"))
    assert run(["tags", "import", str(tagfile)]) == 2
    assert "cannot cache the tag file" in capsys.readouterr().err
    template = tmp_path / "t.json"
    template.write_text(json.dumps({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
                                               "deploymentTemplate.json#", "resources": []}))
    assert run(["import", str(template), "-o", str(tmp_path / "no-such-dir" / "x.nsg")]) == 2
    assert "cannot write" in capsys.readouterr().err
