"""The reachability matrix (nsgsolve/analyses/matrix.py) is a table of query answers: every cell must say
what ``QueryEngine.ask`` (the Z3 path, itself checked against the evaluator) says for the same question,
and its witnesses must replay through the reference evaluator as claimed."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from nsgsolve import load_policy
from nsgsolve.analyses.matrix import compute_matrix, diff_cells
from nsgsolve.analyses.query import QueryEngine, Verdict
from nsgsolve.errors import InputError
from nsgsolve.model import Query
from nsgsolve.reports.html import cell_summary, ports_text
from nsgsolve.semantics.evaluate import Evaluator
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
            assert cell.verdict is None and cell.error[0] == e.diagnostics[0].code, (q.text, cell)
            continue
        assert cell.verdict is want.verdict, (q.text, cell.verdict, want.verdict)
        for w, allowed in ((cell.allowed_witness, True), (cell.blocked_witness, False)):
            if w is None:
                continue
            # Replayed independently of the matrix's own replay: the packet and the addresses it assumes.
            flow = Evaluator(rp, w.assignment).evaluate(w.packet)
            assert flow.allowed is allowed, (q.text, w)
            assert q_traffic(rp, q).contains(w.packet, flow.src_endpoint, flow.dst_endpoint), (q.text, w)
        assert (cell.allowed_witness is None) == (cell.verdict is Verdict.NONE)
        assert (cell.blocked_witness is None) == (cell.verdict is Verdict.ALL)


def q_traffic(rp, q: Query):
    from nsgsolve.analyses.query import compile_query

    return compile_query(rp, q)


def test_three_tier_cells_match_the_query_engine():
    _agrees_with_engine(resolve(load_policy("examples/three-tier.nsg")))


def test_hub_spoke_cells_match_the_query_engine():
    _agrees_with_engine(resolve(load_policy("examples/hub-spoke.nsg")))


def test_three_tier_known_cells():
    m = compute_matrix(resolve(load_policy("examples/three-tier.nsg")), n_workers=1)
    web = m.find("Internet", "WebTier")
    assert (web.verdict, cell_summary(web)) == (Verdict.SOME, "tcp 80,443")
    assert web.allowed_witness.flow.trace[0].rule == "Allow-Web"
    assert web.allowed_witness.packet.dport in (80, 443)
    assert web.blocked_witness.flow.trace[0].rule == "DenyAllInBound"
    db = m.find("Internet", "DbTier")
    assert (db.verdict, cell_summary(db)) == (Verdict.NONE, "nothing")
    # mgmt has no NSG: everything reaches bastion1, and the cell says so in words.
    assert (m.find("Internet", "bastion1").verdict, cell_summary(m.find("Internet", "bastion1"))) == \
        (Verdict.ALL, "everything")
    sql = m.find("prod/app", "db1")
    assert sql.verdict is Verdict.SOME and cell_summary(sql) == "tcp 1433"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(max_rules=5, max_nsgs=2))
def test_random_policies_cells_match_the_query_engine(policy):
    _agrees_with_engine(resolve(policy))


def test_workers_give_the_serial_answer():
    rp = resolve(load_policy("examples/three-tier.nsg"))
    assert compute_matrix(rp, n_workers=2) == compute_matrix(rp, n_workers=1)


def test_diff_cells_name_what_a_change_opens(tmp_path):
    from nsgsolve.analyses.diff import diff_policies

    text = open("examples/three-tier.nsg").read()
    deny_all = "    4000 deny  Deny-All       any from any     to any\n  }\n  outbound {\n    100 allow Allow-Sql"
    oops = "    150  allow Oops           tcp from Internet to AppTier port 22\n"
    new_text = text.replace(deny_all, oops + deny_all, 1)
    assert new_text != text
    new_file = tmp_path / "new.nsg"
    new_file.write_text(new_text)
    old, new = load_policy("examples/three-tier.nsg"), load_policy(str(new_file))
    rp = resolve(new)
    matrix = compute_matrix(rp, n_workers=1)
    cells = diff_cells(matrix, rp, diff_policies(old, new))
    names = {(matrix.rows[i].name, matrix.cols[j].name): {k: ports_text(v) for k, v in change.items()}
             for (i, j), change in cells.items()}
    assert names[("Internet", "AppTier")] == {"opened": "tcp 22"}
    assert names[("Internet", "app1")] == {"opened": "tcp 22"}
    assert ("Internet", "WebTier") not in names and ("prod/web", "AppTier") not in names
    assert all(set(v) == {"opened"} for v in cells.values())
