"""Every corpus file through import: it imports, or stops for the documented reason (docs/import.md).

EXPECTED is the per-file table of docs/import.md. A file that needs parameter values is also imported with the
values listed, so the table proves the template imports once the user supplies them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nsgsolve.errors import InputError
from nsgsolve.importers.loader import load_policy

from corpus import ALLOWED_CODES, CANDIDATES, CORPUS, NEEDS, ROOT

NOT_A_POLICY = {  # Azure's evaluated views of one NIC (E640); 'nsgsolve tags compare' reads the first three
    "docs-az-network-nic-list-effective-nsg-DenyAllInBound.json",
    "docs-az-network-nic-list-effective-nsg-DenyAllOutBound.json",
    "restspec-2022-07-01-NetworkInterfaceEffectiveNSGList.json",
    "restspec-2022-07-01-NetworkWatcherSecurityGroupViewGet.json",
}


def corpus_files() -> list[Path]:
    if CORPUS is None:
        return []
    return sorted((CORPUS / "arm").glob("*.json")) + sorted((CORPUS / "az-cli").glob("*.json"))


def _skip_without_corpus() -> None:
    if CORPUS is None:
        pytest.skip(f"no corpus: looked in {', '.join(str(c) for c in CANDIDATES)}")


@pytest.mark.parametrize("path", corpus_files() or [None], ids=lambda p: p.name if p else "no-corpus")
def test_corpus_file_imports_or_stops_for_the_documented_reason(path):
    _skip_without_corpus()
    name = path.name
    expected = NEEDS.get(name)
    if name in NOT_A_POLICY:
        expected = ("E640", {}, False)
    if code_of(expected) == "E640":
        with pytest.raises(InputError) as e:
            load_policy(path)
        assert {d.code for d in e.value.diagnostics} == {"E640"}
        return
    # A plain import reads every template; what it assumed is a warning pointing into the file.
    warnings: list = []
    policy = load_policy(path, warnings=warnings)
    assert policy.nsgs, f"{name}: imported without any NSG"
    for w in warnings:
        assert w.severity == "warning" and w.span.file == str(path) and w.span.line > 0
    if expected is None:
        strict = load_policy(path, strict=True)
        if [w for w in warnings if w.code in ("W601", "W602", "W603")]:
            # Only scale sets' NICs (read since issue 15, never an error) may need an assumption here: with
            # it they are read, under --strict they are left out.
            assert len(policy.nics) > len(strict.nics), f"{name}: assumed values"
        return
    assert {w.code for w in warnings} & {"W601", "W602", "W603"}, f"{name}: assumed values without a warning"
    code, params, symbolic = expected
    with pytest.raises(InputError) as e:
        load_policy(path, strict=True)
    codes = {d.code for d in e.value.diagnostics}
    assert codes == {code} and codes <= ALLOWED_CODES
    for d in e.value.diagnostics:
        assert d.span.file == str(path) and d.span.line > 0, "every diagnostic points into the file"
    policy = load_policy(path, params=params, symbolic=symbolic, strict=True)
    assert policy.nsgs and sum(len(n.rules) for n in policy.nsgs) > 0


def code_of(expected) -> str | None:
    return expected[0] if expected else None


def test_corpus_figures_match_docs():
    """The figures written in docs/import.md are the ones this suite measures."""
    _skip_without_corpus()
    arm = sorted((CORPUS / "arm").glob("*.json"))
    complete = [p for p in arm if p.name not in NEEDS]
    doc = (ROOT / "docs" / "import.md").read_text()
    assert f"**{len(arm)} of {len(arm)}** ARM templates import with no options" in doc
    assert f"**{len(complete)} of {len(arm)}** import under `--strict`" in doc
    assert f"{len(complete) + sum(1 for v in NEEDS.values() if not v[2])} with `--param`" in doc


def test_no_corpus_subnet_behind_an_nsg_answers_e802():
    """Every subnet with an NSG holds a host a question can name (a NIC, a scale set's NIC configuration,
    or the subnet's implied host), and a query about it is answered."""
    _skip_without_corpus()
    from nsgsolve.analyses.query import QueryEngine
    from nsgsolve.lang.build import parse_query
    from nsgsolve.semantics.resolve import resolve
    from nsgsolve.semantics.servicetags import ServiceTagDb

    tags = sorted((CORPUS / "servicetags").glob("ServiceTags_Public*.json"))
    db = ServiceTagDb.from_json_file(str(tags[-1])) if tags else None
    asked = 0
    for path in sorted((CORPUS / "arm").glob("*.json")):
        policy = load_policy(path)
        try:
            rp = resolve(policy, db)
        except InputError as e:  # an open rule value (W601/W602): analyses stop on it, by design
            assert {d.code for d in e.diagnostics} <= {"E301", "E206"}, (path.name, e.diagnostics[0])
            assert all("?expr:" in d.message for d in e.diagnostics), (path.name, e.diagnostics[0])
            continue
        behind = [(v.name, s.name, s.nsg.name) for v, s in policy.subnets() if s.nsg is not None]
        hosts = {(i.vnet, i.subnet) for i in rp.ipcs.values()}
        assert {b[:2] for b in behind} <= hosts, (path.name, {b[:2] for b in behind} - hosts)
        known = [b for b in behind if b[2] not in rp.open_nsgs]  # an open NSG stops what meets it (E301)
        if known:
            v, s, _ = known[0]
            QueryEngine(rp).ask(parse_query(f"can any reach subnet `{v}`/`{s}`", policy), exact=False)
            asked += 1
    assert asked >= 20


def test_templates_compiled_from_the_corpus_bicep_import():
    """The ARM JSON that 'az bicep build' wrote for each corpus Bicep project (what E005 tells a user to
    give nsgsolve) imports without options."""
    _skip_without_corpus()
    compiled = sorted((CORPUS / "bicep").glob("*/azuredeploy.json"))
    if not compiled:
        pytest.skip("no compiled Bicep templates in the corpus")
    for path in compiled:
        load_policy(path)  # raises on any error; some deploy no NSG of their own
