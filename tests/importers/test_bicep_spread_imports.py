"""Bicep's spread operator (``{ ...base, priority: 100 }``, ``[ ...rules, extra ]``) and compile-time imports
(``import {a} from './x.bicep'``, ``import * as ns from ...``) read by nsgsolve/importers/bicep.py: every form
on small files, every error located in the .bicep file, and files written with them giving the policy of the
same files written without them."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings, strategies as st

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


# ------------------------------------------------------------------ compile-time imports

SHARED = """
@export()
type port = int

@export()
var baseRule = {
  protocol: 'Tcp'
  sourcePortRange: '*'
  destinationAddressPrefix: '*'
  access: 'Allow'
  direction: 'Inbound'
}

var internet = 'Internet'

func source(src string) string => src == '' ? internet : src

@export()
func allowFrom(name string, prio int, src string, p port) object => {
  name: name
  properties: union(baseRule, { priority: prio, sourceAddressPrefix: source(src), destinationPortRange: string(p) })
}

@export()
var adminPorts = [22, 3389]
"""

MAIN = f"""
import {{ allowFrom, baseRule as base }} from './shared.bicep'
import * as s from './shared.bicep'

param first s.port = 443

resource nsg {NSG} = {{
  name: 'web'
  properties: {{
    securityRules: [
      allowFrom('https', 100, '', first)
      s.allowFrom('http', 110, '10.0.0.0/8', 80)
      ...[for (p, i) in s.adminPorts: {{
        name: 'admin${{p}}'
        properties: {{
          ...base, priority: 200 + i, sourceAddressPrefix: '192.168.0.0/16', destinationPortRange: '${{p}}'
        }}
      }}]
    ]
  }}
}}
"""


def test_imports_of_variables_functions_and_types_by_name_alias_and_namespace(tmp_path):
    write(tmp_path, SHARED, "shared.bicep")
    policy, warnings = load(tmp_path, MAIN)
    assert not warnings
    r = rules_of(policy, "web")
    assert list(r) == ["https", "http", "admin22", "admin3389"]
    # an imported function calls its file's own (not exported) function, which reads its file's variable
    assert "Internet" in str(r["https"].source) and r["https"].destination_ports.items[0].lo == 443
    assert [(c.network, c.length) for c in r["http"].source.items] == [(10 << 24, 8)]
    assert (r["admin3389"].priority, r["admin3389"].destination_ports.items[0].lo) == (201, 3389)
    # 'first' has an imported type (s.port, an int): --param text is read as a number
    policy, _ = load(tmp_path, MAIN, params={"first": "8443"})
    assert rules_of(policy, "web")["https"].destination_ports.items[0].lo == 8443
    # A directory stands for the files deployed on their own: not the file imported from.
    status, out, err = cli("show", tmp_path)
    assert status == 0 and out.count("nsg web") == 1, err


def test_imports_over_several_lines_and_in_a_bicepparam_file(tmp_path):
    write(tmp_path, SHARED, "shared.bicep")
    write(tmp_path, MAIN.replace("import { allowFrom, baseRule as base }",
                                 "import {\n  allowFrom\n  baseRule as base\n}"))
    write(tmp_path, "using 'main.bicep'\nimport { adminPorts } from './shared.bicep'\n"
                    "param first = adminPorts[0] + 8000\n", "prod.bicepparam")
    policy = load_policy(tmp_path / "prod.bicepparam")
    assert rules_of(policy, "web")["https"].destination_ports.items[0].lo == 8022


def test_imports_and_spreads_give_the_policy_of_the_file_written_out_and_of_its_arm_template(tmp_path):
    write(tmp_path, SHARED, "shared.bicep")
    with_imports = write(tmp_path, MAIN)
    rules = [("https", 100, "Internet", 443), ("http", 110, "10.0.0.0/8", 80), ("admin22", 200, "192.168.0.0/16", 22),
             ("admin3389", 201, "192.168.0.0/16", 3389)]
    written = "\n".join(f"{{ name: '{n}', properties: union(base, {{ priority: {p}, sourceAddressPrefix: '{s}', "
                        f"destinationPortRange: '{port}' }}) }}" for n, p, s, port in rules)
    plain = write(tmp_path, f"""
var base = {{ protocol: 'Tcp', sourcePortRange: '*', destinationAddressPrefix: '*', access: 'Allow'
  direction: 'Inbound' }}
resource nsg {NSG} = {{
  name: 'web'
  properties: {{
    securityRules: [
{written}
    ]
  }}
}}
    """, "plain/main.bicep")
    # The ARM template Bicep compiles the spreads to: shallowMerge for objects, flatten for arrays.
    base = "createObject('protocol', 'Tcp', 'sourcePortRange', '*', 'destinationAddressPrefix', '*', " \
           "'access', 'Allow', 'direction', 'Inbound')"
    arm = write(tmp_path, json.dumps({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "variables": {"base": f"[{base}]", "adminPorts": [22, 3389]},
        "resources": [{
            "type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": "web",
            "properties": {"securityRules": "[flatten(createArray(createArray("
                           "createObject('name', 'https', 'properties', shallowMerge(createArray(variables('base'), "
                           "createObject('priority', 100, 'sourceAddressPrefix', 'Internet', "
                           "'destinationPortRange', '443')))), "
                           "createObject('name', 'http', 'properties', shallowMerge(createArray(variables('base'), "
                           "createObject('priority', 110, 'sourceAddressPrefix', '10.0.0.0/8', "
                           "'destinationPortRange', '80'))))), "
                           "map(variables('adminPorts'), lambda('p', createObject('name', format('admin{0}', "
                           "lambdaVariables('p')), 'properties', shallowMerge(createArray(variables('base'), "
                           "createObject('priority', add(200, indexOf(variables('adminPorts'), lambdaVariables('p'))), "
                           "'sourceAddressPrefix', '192.168.0.0/16', 'destinationPortRange', "
                           "string(lambdaVariables('p'))))))))))]"},
        }],
    }), "arm/azuredeploy.json")
    assert show(with_imports) == show(plain) == show(arm)
    assert "admin3389" in show(arm)


@pytest.mark.parametrize("text,line,column,code,words", [
    ("import {{allowFrom}} from './nope.bicep'\n", 1, 25, "E747", "cannot be read"),
    ("import {{allowFrm}} from './shared.bicep'\n", 1, 9, "E747", "did you mean 'allowFrom'"),
    ("import {{internet}} from './shared.bicep'\n", 1, 9, "E747", "declared without @export()"),
    ("import * as s from './shared.bicep'\nvar x = s.nothing\n", 2, 11, "E747", "does not export 'nothing'"),
    ("import * as s from './shared.bicep'\nvar x = s.port\n", 2, 11, "E747", "is a type"),
    ("import * as s from './shared.bicep'\nvar x = s.nope(1)\n", 2, 11, "E747", "does not export 'nope'"),
    ("import {{a}} from './c1.bicep'\n", 1, 17, "E747", "imports from itself"),
    ("import {{baseRule}} from './shared.bicep'\nvar baseRule = 1\n", 2, 5, "E741", "declared twice"),
    ("import {{baseRule}} './shared.bicep'\n", 1, 19, "E740", "expected 'from'"),
])
def test_bad_imports_are_located(tmp_path, text, line, column, code, words):
    write(tmp_path, SHARED, "shared.bicep")
    write(tmp_path, "import {b} from './c2.bicep'\n@export()\nvar a = 1\n", "c1.bicep")
    write(tmp_path, "import {a} from './c1.bicep'\n@export()\nvar b = 1\n", "c2.bicep")
    f = write(tmp_path, text.format())
    status, out, err = cli("show", f)
    assert status == 2, err
    where = tmp_path / "c2.bicep" if words == "imports from itself" else f
    assert f"{where}:{line}:{column}: error[{code}]" in err and words in err, err
    assert "Traceback" not in err and "^" in err


def test_an_import_from_a_registry_is_named_and_its_names_unknown(tmp_path):
    text = f"""
        import {{ nsgName }} from 'br:contoso.azurecr.io/bicep/shared:1.0'
        import * as ts from 'br/public:network/shared:2.0'
        resource nsg {NSG} = {{
          name: NAME
        }}
    """
    policy, warnings = load(tmp_path, text.replace("NAME", "'web'"))
    assert [d.code for d in warnings] == ["W744", "W744"]
    assert "contoso.azurecr.io" in warnings[0].message and "'nsgName'" in warnings[0].message
    assert (warnings[0].span.line, warnings[0].span.column) == (2, 25)
    assert [n.name for n in policy.nsgs] == ["web"]
    # where nsgsolve needs an imported value, it is not guessed: E610 names the import
    for name in ("nsgName", "ts.name", "ts.nsgName('x')"):
        d = error_of(tmp_path, text.replace("NAME", name))
        assert d.code == "E610" and "import nsgsolve cannot read" in d.message, (name, d)
    # An ARM template's exports are not read either (W744); an extension's namespace is not an import of names.
    write(tmp_path, "{}", "shared.json")
    policy, warnings = load(tmp_path, f"""
        import 'az@1.0.0'
        import {{ nsgName }} from './shared.json'
        resource nsg {NSG} = {{
          name: 'web'
        }}
    """)
    assert [d.code for d in warnings] == ["W744"] and "ARM template" in warnings[0].message
    assert [n.name for n in policy.nsgs] == ["web"]


# ------------------------------------------------------------------ spread = what Bicep compiles it to

_KEY = st.sampled_from(["a", "b", "c"])
_OBJ = st.dictionaries(_KEY, st.integers(0, 9), max_size=3)
# A literal run of properties or items, or a spread of a variable (its value): objects, then arrays.
_OBJ_PARTS = st.lists(st.tuples(st.booleans(), _OBJ), min_size=1, max_size=5)
_ARR_PARTS = st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 9), max_size=3)), min_size=1, max_size=5)


def _bicep_var(text: str, name: str):
    from nsgsolve.importers.bicep import BicepEvaluator, Reader
    from nsgsolve.model import NOSPAN

    prog = Reader(lambda p: "", lambda d: None).program("p.bicep", text)
    return BicepEvaluator.for_program(prog, {}, lenient=True).variable(name, name, NOSPAN)


def _arm_var(variables: dict, name: str):
    from nsgsolve.importers.armexpr import Evaluator
    from nsgsolve.model import NOSPAN

    return Evaluator("t.json", {}, {}, variables).variable(name, name, NOSPAN)


def _written(parts: list, prefix: str, lines: list, variables: dict, literal, items, created):
    """The items of a Bicep literal holding ``parts`` (a spread of a new variable, or a run of literal items) and
    the arguments of the ARM call it compiles to; the variables are added to ``lines`` and ``variables``."""
    bicep, arm = [], []
    for i, (spread, value) in enumerate(parts):
        if spread:
            lines.append(f"var {prefix}{i} = {literal(value)}")
            variables[f"{prefix}{i}"] = value
            bicep.append(f"...{prefix}{i}")
            arm.append(f"variables('{prefix}{i}')")
        else:
            bicep += items(value)
            arm.append(created(value))
    return bicep, arm


@settings(max_examples=40, deadline=None)
@given(objects=_OBJ_PARTS, arrays=_ARR_PARTS)
def test_spreads_equal_the_shallow_merge_and_flatten_bicep_compiles_them_to(objects, arrays):
    lines: list[str] = []
    variables: dict = {}
    obj_items, obj_args = _written(
        objects, "o", lines, variables, lambda v: "{" + ", ".join(f"{k}: {x}" for k, x in v.items()) + "}",
        lambda v: [f"{k}: {x}" for k, x in v.items()],
        lambda v: "createObject(" + ", ".join(f"'{k}', {x}" for k, x in v.items()) + ")")
    arr_items, arr_args = _written(
        arrays, "a", lines, variables, lambda v: f"[{', '.join(map(str, v))}]", lambda v: [str(x) for x in v],
        lambda v: f"createArray({', '.join(map(str, v))})")
    lines += ["var x = {", *obj_items, "}", "var y = [", *arr_items, "]"]
    variables["x"] = f"[shallowMerge(createArray({', '.join(obj_args)}))]"
    variables["y"] = f"[flatten(createArray({', '.join(arr_args)}))]"
    text = "\n".join(lines) + "\n"
    assert dict(_bicep_var(text, "x")) == dict(_arm_var(variables, "x")), text
    assert list(_bicep_var(text, "y")) == list(_arm_var(variables, "y")), text
