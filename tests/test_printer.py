"""The printer: model → text → same model, fmt keeps comments, is idempotent and never changes meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from nsgsolve.semantics.addresses import ip_to_int
from nsgsolve.lang.build import in_evaluation_order, parse_policy
from nsgsolve.model import (
    Access, AnyAddress, Cidr, Direction, Nsg, Policy, PortSpec, PrefixSide, Protocol, Ref, Rule, TagSide,
)
from nsgsolve.lang.printer import escape, format_text, print_policy, quote_name, without_spans
from strategies import policies

EXAMPLES = Path(__file__).parent.parent / "examples"


def same_meaning(a: str, b: str) -> bool:
    return without_spans(parse_policy(a, "t.nsg")) == without_spans(parse_policy(b, "t.nsg"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_random_model_prints_and_parses_back_to_itself(policy):
    text = print_policy(policy)
    back = parse_policy(text, "t.nsg")
    expected = without_spans(policy)
    # The printer writes rules in evaluation order; the model's order within an NSG is not meaning.
    def canon(p: Policy) -> Policy:
        from dataclasses import replace
        return replace(in_evaluation_order(p), source="t.nsg")
    assert without_spans(back) == canon(expected), text
    assert print_policy(back) == text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies(max_rules=4, admin=True))
def test_random_admin_rules_print_and_parse_back(policy):
    """Network groups, admin configurations and their rules (AlwaysAllow, mixed prefix/tag sides) too."""
    from dataclasses import replace

    text = print_policy(policy)
    back = parse_policy(text, "t.nsg")
    assert without_spans(back) == without_spans(replace(in_evaluation_order(policy), source="t.nsg")), text
    assert print_policy(back) == text


@pytest.mark.parametrize("name", ["webservers.nsg", "three-tier.nsg", "hub-spoke.nsg"])
def test_examples_are_formatted(name):
    text = (EXAMPLES / name).read_text()
    assert format_text(text, name) == text


MESSY = """# header comment

subscription   MSDN   # trailing on subscription
asg B, A     # two ASGs on one line
define ports WEB=80,443
vnet hub 10.0.0.0/16 {   # the hub
  # subnets
  subnet web 10.0.1.0/24 { nsg n }
  peer spoke
}
vnet spoke 10.1.0.0/16 {}
nic web1 in web ip 10.0.1.4 asg A
nsg n {
  # inbound rules
  inbound {
    # the second rule
    200 deny Two tcp from any to any
    100 ALLOW One TCP from Internet to A port WEB "web"   # first by priority
    # last words in the block
  }
}
query can Internet reach A port 443 TCP
# end of file
"""


def test_fmt_keeps_every_comment_and_is_idempotent():
    once = format_text(MESSY, "t.nsg")
    assert format_text(once, "t.nsg") == once
    for line in MESSY.splitlines():
        if "#" in line:
            comment = line[line.index("#"):]
            assert comment in once, f"lost {comment!r}:\n{once}"
    assert same_meaning(MESSY, once)


def test_fmt_moves_comments_with_their_rules():
    out = format_text(MESSY, "t.nsg").splitlines()
    one = next(i for i, l in enumerate(out) if " One " in l)
    two = next(i for i, l in enumerate(out) if " Two " in l)
    assert one < two, "rules are printed in priority order"
    assert out[one].endswith("# first by priority")
    assert out[two - 1].strip() == "# the second rule"
    close = next(i for i in range(two, len(out)) if out[i].strip() == "}")
    assert out[close - 1].strip() == "# last words in the block"
    assert out[-1] == "# end of file"
    assert out[0] == "# header comment" and out[1] == ""


def test_canonical_layout():
    out = format_text(MESSY, "t.nsg")
    assert "subscription msdn  # trailing on subscription\n" in out
    assert "asg B  # two ASGs on one line\nasg A\n" in out
    assert "subnet web 10.0.1.0/24 nsg n\n" in out
    assert "nic web1 in hub/web ip 10.0.1.4 asg A\n" in out
    assert "vnet spoke 10.1.0.0/16\n" in out
    assert "query can Internet reach A port 443 tcp\n" in out


@pytest.mark.parametrize("name,written", [
    ("web", "web"), ("Storage.WestUS", "Storage.WestUS"), ("3389-rdp", "`3389-rdp`"), ("any", "`any`"),
    ("Tag", "`Tag`"), ("ONPREM", "ONPREM"), ("with space", "`with space`"), ("from", "from"),
])
def test_quote_name(name, written):
    assert quote_name(name) == written


def test_names_that_cannot_be_written_are_refused():
    with pytest.raises(ValueError):
        quote_name("a`b")


def test_escape_round_trips():
    from nsgsolve.lang.build import unescape
    s = 'say "hi" \\ \n\tend'
    assert unescape(escape(s)) == s


def test_bare_name_that_would_misread_is_printed_with_its_kind():
    # A tag whose name is close to an ASG's would read back as a typo (E208); the printer writes 'tag'.
    p = parse_policy(
        "asg Storages\nnsg n {\n inbound {\n  100 allow r tcp from tag Storage to Storages\n }\n}\n", "t.nsg"
    )
    text = print_policy(p)
    assert "from tag Storage to Storages" in text
    assert without_spans(parse_policy(text, "t.nsg")) == without_spans(p)


def test_importer_notes_become_comments_and_ipv6_prints_back():
    v6_only = Rule("v6", 110, Direction.INBOUND, Access.ALLOW, Protocol.TCP,
                   PrefixSide((Cidr(ip_to_int("2001:db8::"), 32),)), PortSpec(None), AnyAddress(), PortSpec(None))
    mixed = Rule("mixed", 100, Direction.INBOUND, Access.DENY, Protocol.ANY,
                 PrefixSide((Cidr(ip_to_int("10.0.0.0"), 8), Cidr(ip_to_int("fd00::"), 8))), PortSpec(None),
                 TagSide(Ref("Internet")), PortSpec(None), notes=("port '*' normalised",))
    p = Policy(nsgs=(Nsg("n", (mixed, v6_only)),), notes=("imported from template.json",))
    text = print_policy(p)
    assert text.startswith("# imported from template.json\n")
    assert "# port '*' normalised" in text and "from 10.0.0.0/8, fd00::/8 " in text and "from 2001:db8::/32 " in text
    back = parse_policy(text, "t.nsg")
    assert [r.name for r in back.nsgs[0].rules] == ["mixed", "v6"]
    assert [(c.network, c.length) for c in back.nsgs[0].rules[0].source.items] == \
        [(ip_to_int("10.0.0.0"), 8), (ip_to_int("fd00::"), 8)]


def test_fmt_refuses_files_that_do_not_build():
    from nsgsolve.errors import InputError

    with pytest.raises(InputError):
        format_text("asg WebServers\nnsg n {\n inbound {\n  100 allow r tcp from any to WebServer\n }\n}\n", "t.nsg")
