"""Bicep's spread operator (``{ ...base, priority: 100 }``, ``[ ...rules, extra ]``) and compile-time imports
(``import {a} from './x.bicep'``, ``import * as ns from ...``) read by nsgsolve/importers/bicep.py: every form
on small files, every error located in the .bicep file, and files written with them giving the policy of the
same files written without them."""

from __future__ import annotations

import re

import pytest

from nsgsolve.importers.loader import load_policy
from nsgsolve.reports.show import show_text
from nsgsolve.semantics.resolve import resolve

from test_bicep import NSG, cli, error_of, load, rules_of, write

RULE = "{ protocol: 'Tcp', sourcePortRange: '*', sourceAddressPrefix: 'Internet', destinationAddressPrefix: '*', " \
       "access: 'Allow', direction: 'Inbound', priority: 500 }"


def show(path) -> str:
    """`show` of a file, without its first line (which names the file)."""
    return show_text(resolve(load_policy(path))).split("\n", 1)[1]


# ------------------------------------------------------------------ spread


def test_object_spread_later_keys_win_and_array_spread_concatenates(tmp_path):
    policy, warnings = load(tmp_path, f"""
        var base = {RULE}
        var ssh = {{
          name: 'ssh'
          properties: {{ ...base, destinationPortRange: '22', priority: 100 }}
        }}
        var first = [
          ssh
        ]
        resource nsg {NSG} = {{
          name: 'web'
          properties: {{
            securityRules: [
              ...first
              {{
                name: 'https'
                properties: {{
                  ...base
                  destinationPortRange: '443'
                }}
              }}
              ...[for p in [8080, 8443]: {{
                name: 'app${{p}}'
                properties: {{ ...base, destinationPortRange: string(p), priority: p - 7000, Access: 'Deny' }}
              }}]
            ]
          }}
        }}
    """)
    assert not warnings
    r = rules_of(policy, "web")
    assert list(r) == ["ssh", "https", "app8080", "app8443"]
    assert (r["ssh"].priority, r["https"].priority, r["app8443"].priority) == (100, 500, 1443)
    assert r["https"].access.value == "Allow"
    # 'Access' replaces 'access' of base: keys are matched without regard to case, the later one wins
    assert r["app8080"].access.value == "Deny"


def test_spreads_in_a_row_without_commas_and_conditional_spreads(tmp_path):
    policy, _ = load(tmp_path, f"""
        param strict bool = true
        var a = {{ destinationPortRange: '22' }}
        var b = {{ priority: 110 }}
        resource nsg {NSG} = {{
          name: 'web'
          properties: {{
            securityRules: [
              {{
                name: 'ssh'
                properties: {{
                  ...{RULE}
                  ...a
                  ...b
                  ...(strict ? {{ sourceAddressPrefix: '10.0.0.0/8' }} : {{}})
                }}
              }}
              ...(strict ? [] : [{{ name: 'open', properties: {{ ...{RULE}, destinationPortRange: '*' }} }}])
            ]
          }}
        }}
    """)
    r = rules_of(policy, "web")
    assert list(r) == ["ssh"]
    assert r["ssh"].priority == 110 and r["ssh"].destination_ports.items[0].lo == 22
    assert [(c.network, c.length) for c in r["ssh"].source.items] == [(10 << 24, 8)]  # not base's 'Internet'


@pytest.mark.parametrize("text,line,column,words", [
    ("var a = 'x'\nvar b = [\n  ...a\n]\nresource nsg {NSG} = {{\n  name: 'n'\n"
     "  properties: {{ securityRules: b }}\n}}\n",
     3, 3, "spreads a string into an array"),
    ("var a = [1]\nresource nsg {NSG} = {{\n  name: 'n'\n  tags: {{ x: 'y', ...a }}\n}}\n",
     4, 19, "spreads an array into an object"),
    ("var a = null\nresource nsg {NSG} = {{\n  name: 'n'\n  tags: {{\n    ...a\n  }}\n}}\n",
     5, 5, "spreads null into an object"),
    ("var a = {{}}\nresource nsg {NSG} = {{\n  ...a\n  name: 'n'\n}}\n", 3, 3, "body of a resource"),
    ("var a = {{}}\nresource nsg {NSG} = [for i in range(0, 2): {{\n  name: 'n${{i}}'\n  ...a\n}}]\n",
     4, 3, "body of a resource"),
    ("var a = {{}}\nresource nsg {NSG} = if (true) {{\n  name: 'n'\n  ...a\n}}\n", 4, 3, "body of a resource"),
    ("module m './m.bicep' = {{\n  name: 'm'\n  ...{{}}\n}}\n", 3, 3, "body of a module"),
    ("var p = {{ x: 1 }}\nmodule m './m.bicep' = {{\n  name: 'm'\n  params: {{\n    ...p\n  }}\n}}\n",
     5, 5, "module's params"),
    ("var a = {{}}\nvar b = {{\n  ...a\n  xs: [for i in range(0, 2): i]\n}}\n", 3, 3, "property loop"),
])
def test_bad_spreads_are_located(tmp_path, text, line, column, words):
    write(tmp_path, "param x int = 1\n", "m.bicep")
    f = write(tmp_path, text.format(NSG=NSG))
    status, out, err = cli("show", f)
    assert status == 2, err
    assert f"{f}:{line}:{column}: error[E746]" in err and words in err, err
    assert "Traceback" not in err and "^^^" in err


def test_a_spread_of_an_unset_parameter_is_unknown_not_guessed(tmp_path):
    # Which prefixes an unset array adds is unknown: the source is left open (symbolic) and the parameter
    # named, exactly as concat(['10.0.0.0/8'], extra) would leave it.
    text = f"""
        param extra array
        resource nsg {NSG} = {{
          name: 'web'
          properties: {{
            securityRules: [
              {{
                name: 'ssh'
                properties: {{
                  ...{RULE}, destinationPortRange: '22', sourceAddressPrefix: null, sourceAddressPrefixes: SOURCES
                }}
              }}
            ]
          }}
        }}
    """
    policy, warnings = load(tmp_path, text.replace("SOURCES", "[ '10.0.0.0/8', ...extra ]"))
    other, other_warnings = load(tmp_path, text.replace("SOURCES", "concat([ '10.0.0.0/8' ], extra)"))
    assert [d.code for d in warnings] == [d.code for d in other_warnings] == ["W602"]
    assert "'extra'" in warnings[0].message
    def unplaced(rule) -> str:  # the rule without where its parts were written (the columns differ)
        return re.sub(r"Span\([^)]*\)", "", str(rule))

    assert unplaced(rules_of(policy, "web")["ssh"]) == unplaced(rules_of(other, "web")["ssh"])
    # A spread of an unset object, where the keys it brings decide the rule: not guessed either.
    d = error_of(tmp_path, f"""
        param extra object
        resource nsg {NSG} = {{
          name: 'web'
          properties: {{ securityRules: [ {{ name: 'ssh', properties: {{ ...{RULE}, ...extra }} }} ] }}
        }}
    """)
    assert d.code.startswith("E6"), d


def test_spread_gives_the_policy_of_the_same_file_written_out(tmp_path):
    spread = write(tmp_path, f"""
        var base = {RULE}
        var more = [
          {{ name: 'https', properties: {{ ...base, destinationPortRange: '443', priority: 110 }} }}
        ]
        resource nsg {NSG} = {{
          name: 'web'
          properties: {{
            securityRules: [
              {{ name: 'ssh', properties: {{ ...base, destinationPortRange: '22', priority: 100 }} }}
              ...more
            ]
          }}
        }}
    """, "spread/main.bicep")
    plain = write(tmp_path, f"""
        var base = {RULE}
        resource nsg {NSG} = {{
          name: 'web'
          properties: {{
            securityRules: [
              {{ name: 'ssh', properties: union(base, {{ destinationPortRange: '22', priority: 100 }}) }}
              {{ name: 'https', properties: union(base, {{ destinationPortRange: '443', priority: 110 }}) }}
            ]
          }}
        }}
    """, "plain/main.bicep")
    assert show(spread) == show(plain)
    assert "443" in show(spread)
