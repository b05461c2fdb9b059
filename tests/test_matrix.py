"""The reachability matrix (nsgsolve/analyses/matrix.py) is a table of query answers: every cell must say
what ``QueryEngine.ask`` (the Z3 path, itself checked against the evaluator) says for the same question,
and its witnesses must replay through the reference evaluator as claimed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from nsgsolve import load_policy
from nsgsolve.analyses.matrix import compute_matrix, diff_cells
from nsgsolve.analyses.query import QueryEngine
from nsgsolve.errors import InputError
from nsgsolve.model import Query
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import resolve

from strategies import policies


def _agrees_with_engine(rp) -> None:
    matrix = compute_matrix(rp, n_workers=1)
    engine = QueryEngine(rp)
    for cell in matrix.cells:
        src, dst = matrix.rows[cell.row], matrix.cols[cell.col]
        q = Query((src.item,), (dst.item,), text=f"can {src.name} reach {dst.name}")
        try:
            want = engine.ask(q, coverage=False)
        except InputError as e:
            assert cell.verdict is None and cell.error["code"] == e.diagnostics[0].code, (q.text, cell)
            continue
        assert cell.verdict == want.verdict.value, (q.text, cell.verdict, want.verdict)
        for w, allowed in ((cell.allowed_witness, True), (cell.blocked_witness, False)):
            if w is None:
                continue
            p = _packet(w)
            assignment = {k: v for k, v in _assignment(rp, w).items()}
            flow = Evaluator(rp, assignment).evaluate(p)
            assert flow.allowed is allowed, (q.text, w)
        assert (cell.allowed_witness is None) == (cell.verdict == "none")
        assert (cell.blocked_witness is None) == (cell.verdict == "all")


def _packet(w: dict) -> Packet:
    from nsgsolve.model import Protocol
    from nsgsolve.semantics.addresses import ip_to_int

    name = w["protocol"]
    number = int(name) if name.isdigit() else Protocol.parse(name).number
    return Packet(number, ip_to_int(w["src"]), w["sport"], ip_to_int(w["dst"]), w["dport"])


def _assignment(rp, w: dict) -> dict:
    from nsgsolve.semantics.addresses import ip_to_int

    dyn = w.get("dynamic_ips") or w.get("assume_ip") or {}
    by_label = {str(k): k for k in rp.ipcs}
    return {by_label[name]: ip_to_int(ip) for name, ip in dyn.items() if name in by_label}


def test_three_tier_cells_match_the_query_engine():
    _agrees_with_engine(resolve(load_policy("examples/three-tier.nsg")))


def test_hub_spoke_cells_match_the_query_engine():
    _agrees_with_engine(resolve(load_policy("examples/hub-spoke.nsg")))


def test_three_tier_known_cells():
    m = compute_matrix(resolve(load_policy("examples/three-tier.nsg")), n_workers=1)
    web = m.find("Internet", "WebTier")
    assert (web.verdict, web.summary) == ("some", "tcp 80,443")
    assert web.allowed_witness["trace"][0]["rule"] == "Allow-Web"
    assert web.allowed_witness["dport"] in (80, 443)
    assert m.find("Internet", "DbTier").verdict == "none"
    assert m.find("Internet", "DbTier").summary == "nothing"
    # mgmt has no NSG: everything reaches bastion1, and the cell says so in words.
    assert (m.find("Internet", "bastion1").verdict, m.find("Internet", "bastion1").summary) == ("all", "everything")
    sql = m.find("prod/app", "db1")
    assert sql.verdict == "some" and sql.summary == "tcp 1433"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(max_rules=5, max_nsgs=2))
def test_random_policies_cells_match_the_query_engine(policy):
    _agrees_with_engine(resolve(policy))


def test_workers_give_the_serial_answer():
    rp = resolve(load_policy("examples/three-tier.nsg"))
    assert compute_matrix(rp, n_workers=2).to_dict() == compute_matrix(rp, n_workers=1).to_dict()


def test_diff_cells_name_what_a_change_opens(tmp_path):
    from nsgsolve.analyses.diff import diff_policies

    text = open("examples/three-tier.nsg").read()
    new_text = text.replace("    4000 deny  Deny-All       any from any     to any\n  }\n  outbound {\n    100 allow Allow-Sql",
                            "    150  allow Oops           tcp from Internet to AppTier port 22\n"
                            "    4000 deny  Deny-All       any from any     to any\n  }\n  outbound {\n    100 allow Allow-Sql", 1)
    assert new_text != text
    new_file = tmp_path / "new.nsg"
    new_file.write_text(new_text)
    old, new = load_policy("examples/three-tier.nsg"), load_policy(str(new_file))
    rp = resolve(new)
    matrix = compute_matrix(rp, n_workers=1)
    cells = diff_cells(matrix, rp, diff_policies(old, new))
    names = {(matrix.rows[int(k.split(",")[0])].name, matrix.cols[int(k.split(",")[1])].name): v
             for k, v in cells.items()}
    assert names[("Internet", "AppTier")] == {"kind": "opened", "opened": "tcp 22", "closed": ""}
    assert names[("Internet", "app1")]["opened"] == "tcp 22"
    assert ("Internet", "WebTier") not in names and ("prod/web", "AppTier") not in names
    assert all(v["kind"] == "opened" for v in cells.values())
