"""ARM templates with Azure Virtual Network Manager resources: network groups and their static members,
security admin configurations, rule collections (appliesToGroups) and admin rules (kind Custom)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from nsgsolve.errors import InputError
from nsgsolve.model import Access, Direction, PrefixSide, Protocol, TagSide
from nsgsolve.semantics.evaluate import Evaluator, Packet
from nsgsolve.semantics.resolve import resolve

from fixtures_arm import load

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "arm" / "avnm-security-admin.json"
DOC = json.loads(FIXTURE.read_text())


def with_resources(edit) -> str:
    doc = copy.deepcopy(DOC)
    edit(doc["resources"])
    return json.dumps(doc, indent=2)


def by_name(resources, name):
    return next(r for r in resources if r["name"] == name)


def error_codes(text: str) -> list[str]:
    with pytest.raises(InputError) as e:
        load(text)
    return [d.code for d in e.value.diagnostics]


def test_groups_configurations_collections_and_rules_are_read():
    p = load(FIXTURE.read_text())
    assert [(g.name, [m.name for m in g.members]) for g in p.groups] == [("prod", ["hub"])]
    (cfg,) = p.admin_configs
    assert cfg.name == "guardrails"
    (coll,) = cfg.collections
    assert coll.name == "high-risk" and [g.name for g in coll.groups] == ["prod"]
    deny, always = sorted(coll.rules, key=lambda r: r.priority)
    assert (deny.name, deny.priority, deny.direction, deny.access, deny.protocol) == (
        "deny-mgmt-from-internet", 10, Direction.INBOUND, Access.DENY, Protocol.TCP)
    assert [type(s) for s in deny.sources] == [TagSide] and deny.sources[0].tag.name == "Internet"
    assert deny.destinations == ()  # '*' is any address
    assert deny.source_ports.is_any  # 0-65535
    assert [(x.lo, x.hi) for x in deny.destination_ports.items] == [(22, 22), (3389, 3389)]  # from the parameter
    assert deny.description == "no management ports from the Internet"
    assert always.access is Access.ALWAYS_ALLOW
    assert [type(s) for s in always.sources] == [PrefixSide, TagSide]  # a mixed list, as Azure allows
    assert always.destinations == () and always.source_ports.is_any
    assert deny.span.file.endswith("azuredeploy.json") and deny.span.line > 1


def test_imported_admin_rules_decide_before_the_nsgs():
    rp = resolve(load(FIXTURE.read_text()))
    ev = Evaluator(rp)
    ssh = ev.evaluate(Packet.parse("tcp", "203.0.113.9", 50000, "10.0.1.4", 22))
    assert ssh.decision is Access.DENY  # the NSG's Allow-SSH is never consulted
    assert [(s.layer, s.rule, s.evaluated) for s in ssh.trace] == [
        ("admin", "deny-mgmt-from-internet", True), ("nsg", "Allow-SSH", False)]
    https = ev.evaluate(Packet.parse("tcp", "10.9.0.20", 50000, "10.0.1.4", 443))
    assert https.decision is Access.ALLOW  # the NSG's Deny-Https is skipped by AlwaysAllow
    assert https.trace[1].skipped == "skipped: AlwaysAllow by admin rule always-monitoring"
    other = ev.evaluate(Packet.parse("tcp", "203.0.113.9", 50000, "10.0.1.4", 443))
    assert other.decision is Access.DENY and other.trace[1].rule == "Deny-Https"


def test_the_import_prints_the_admin_layer_and_reads_back():
    from nsgsolve.lang.build import parse_policy
    from nsgsolve.lang.printer import print_policy, without_spans

    p = load(FIXTURE.read_text())
    text = print_policy(p)
    assert "admin guardrails {" in text and "collection high-risk for prod {" in text
    back = parse_policy(text, "x.nsg")
    assert without_spans(back.admin_configs) == without_spans(p.admin_configs)


def test_alwaysallow_in_an_nsg_rule_is_e680():
    def edit(rs):
        by_name(rs, "web-nsg")["properties"]["securityRules"][0]["properties"]["access"] = "AlwaysAllow"
    assert error_codes(with_resources(edit)) == ["E680"]


def test_default_kind_admin_rules_are_e681():
    def edit(rs):
        by_name(rs, "corp-nm/guardrails/high-risk/always-monitoring")["kind"] = "Default"
    assert error_codes(with_resources(edit)) == ["E681"]


@pytest.mark.parametrize("value", [0, 4097, "first"])
def test_admin_priority_outside_1_to_4096_is_e682(value):
    def edit(rs):
        by_name(rs, "corp-nm/guardrails/high-risk/always-monitoring")["properties"]["priority"] = value
    assert error_codes(with_resources(edit)) == ["E682"]


def test_unknown_address_prefix_type_is_e683():
    def edit(rs):
        by_name(rs, "corp-nm/guardrails/high-risk/always-monitoring")["properties"]["sources"][0][
            "addressPrefixType"] = "Subnet"
    assert error_codes(with_resources(edit)) == ["E683"]


def test_collection_applied_to_a_group_not_in_the_inputs_is_e684():
    def edit(rs):
        coll = by_name(rs, "corp-nm/guardrails/high-risk")
        coll["properties"]["appliesToGroups"][0]["networkGroupId"] = (
            "[resourceId('Microsoft.Network/networkManagers/networkGroups', 'corp-nm', 'dev')]")
    assert error_codes(with_resources(edit)) == ["E684"]


def test_static_member_that_is_no_vnet_is_e685_and_a_missing_vnet_is_a_note():
    def edit(rs):
        member = rs[3]["resources"][0]["resources"][0]
        member["properties"]["resourceId"] = "[resourceId('Microsoft.Network/networkInterfaces', 'vm1-nic')]"
    assert error_codes(with_resources(edit)) == ["E685"]

    def elsewhere(rs):
        member = rs[3]["resources"][0]["resources"][0]
        member["properties"]["resourceId"] = "[resourceId('Microsoft.Network/virtualNetworks', 'spoke')]"
    p = load(with_resources(elsewhere))
    assert p.groups[0].members == ()
    assert any("spoke, which is not in the inputs" in n for n in p.notes)


def test_ignore_admin_rules_flag_drops_imported_configurations(tmp_path):
    import io

    from nsgsolve.cli import run

    out, err = io.StringIO(), io.StringIO()
    argv = ["verify", str(FIXTURE), "--src", "203.0.113.9", "--dst", "vm1-nic", "--protocol", "tcp", "--dport", "22"]
    assert run(argv, out, err) == 0 and out.getvalue().startswith("DENY")
    out = io.StringIO()
    assert run(argv + ["--ignore-admin-rules"], out, err) == 0 and out.getvalue().startswith("ALLOW"), out.getvalue()
