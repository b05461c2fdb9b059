import pytest

from nsgsolve.importers.armexpr import Evaluator, ExprSyntaxError, Unknown, parse_expression
from nsgsolve.importers.jsonpos import parse
from nsgsolve.model import Span

S = Span("t.json", 1, 1)


def ev(params=None, values=None, variables=None) -> Evaluator:
    return Evaluator("t.json", params or {}, values or {}, variables or {})


@pytest.mark.parametrize("expr,expected", [
    ("[concat('a', 'b', string(1))]", "ab1"),
    ("[concat(createArray(1, 2), createArray(3))]", [1, 2, 3]),
    ("[format('{0}-{1}', 'web', 3)]", "web-3"),
    ("[format('{0:D3}', 7)]", "007"),
    ("[format('{{literal}} {0}', 'x')]", "{literal} x"),
    ("[toLower('TCP')]", "tcp"),
    ("[toUpper('inbound')]", "INBOUND"),
    ("[int('42')]", 42),
    ("[string(42)]", "42"),
    ("[if(equals(1, 1), 'yes', 'no')]", "yes"),
    ("[equals('a', 'A')]", False),
    ("[equals('1', 1)]", False),
    ("[createArray('10.0.0.0/24', '10.0.1.0/24')[1]]", "10.0.1.0/24"),
    ("[json('{\"a\": {\"b\": 5}}').a.b]", 5),
    ("[split('a,b', ',')]", ["a", "b"]),
    ("[length(range(0, 4))]", 4),
    ("[add(copyIndex(), 1)]", Unknown),  # outside a loop
    ("[resourceGroup().location]", "location"),
    ("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]",
     "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/resourceGroup/providers/"
     "Microsoft.Network/virtualNetworks/v/subnets/s"),
    ("[resourceId('otherRg', 'Microsoft.Network/networkSecurityGroups', 'n')]",
     "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/otherRg/providers/"
     "Microsoft.Network/networkSecurityGroups/n"),
    ("[cidrSubnet('10.0.0.0/16', 24, 2)]", "10.0.2.0/24"),
    ("[ConCat('a', 'b')]", "ab"),  # function names are case-insensitive
    ("[[not an expression]", "[not an expression]"),
    ("plain", "plain"),
])
def test_functions(expr, expected):
    v = ev().value(expr, S)
    if expected is Unknown:
        assert isinstance(v, Unknown)
    else:
        assert v == expected


def test_if_evaluates_only_the_branch_taken():
    assert ev().value("[if(true(), 'a', reference('missing').x)]", S) == "a"


def test_uniquestring_is_stable_and_distinguishes_arguments():
    e = ev()
    a = e.value("[uniqueString(resourceGroup().id, 'x')]", S)
    assert a == e.value("[uniqueString(resourceGroup().id, 'x')]", S)
    assert a != e.value("[uniqueString(resourceGroup().id, 'y')]", S)
    assert len(a) == 13 and "uniqueString()" in e.placeholders


def test_parameters_default_override_and_coercion():
    decls = parse(
        '{"p": {"type": "string", "defaultValue": "[concat(\'a\', \'b\')]"},'
        ' "n": {"type": "int", "defaultValue": 1}, "arr": {"type": "array"}, "none": {"type": "string"}}',
        "t",
    )
    e = ev(decls, {"n": "5", "arr": '["10.0.0.0/8"]'})
    assert e.value("[parameters('p')]", S) == "ab"
    assert e.value("[parameters('N')]", S) == 5  # names case-insensitive, --param text typed by the declaration
    assert e.value("[parameters('arr')]", S) == ["10.0.0.0/8"]
    u = e.value("[parameters('none')]", S)
    assert isinstance(u, Unknown) and "--param none=" in u.reason


def test_variables_are_lazy_reference_each_other_and_detect_cycles():
    variables = parse('{"a": "[concat(variables(\'b\'), \'-a\')]", "b": "[toUpper(\'b\')]",'
                      ' "loop1": "[variables(\'loop2\')]", "loop2": "[variables(\'loop1\')]",'
                      ' "unused": "[reference(\'x\').y]"}', "t")
    e = ev(variables=variables)
    assert e.value("[variables('a')]", S) == "B-a"
    u = e.value("[variables('loop1')]", S)
    assert isinstance(u, Unknown) and "refers to itself" in u.reason


def test_variable_copy_loop():
    e = ev()
    e.set_variable_loops(parse('[{"name": "ports", "count": 3, "input": "[add(8080, copyIndex(\'ports\'))]"}]', "t"))
    assert e.value("[variables('ports')]", S) == [8080, 8081, 8082]


def test_property_copy_loop_expands_in_place():
    raw = parse('{"copy": [{"name": "rules", "count": 2, "input": {"n": "[concat(\'r\', copyIndex(\'rules\'))]"}}],'
                ' "other": 1}', "t")
    assert ev().value(raw, S) == {"rules": [{"n": "r0"}, {"n": "r1"}], "other": 1}


def test_unknowns_name_the_reason_and_keep_the_expression():
    u = ev().value("[concat('x', reference('vnet1').addressSpace)]", Span("t.json", 7, 9))
    assert isinstance(u, Unknown)
    assert "not defined in this template" in u.reason
    assert u.expr == "[concat('x', reference('vnet1').addressSpace)]" and u.span.line == 7
    assert "not evaluated" in ev().value("[frobnicate(1)]", S).reason
    assert "offline" in ev().value("[listKeys('x', '2020').keys[0]]", S).reason


@pytest.mark.parametrize("bad", ["concat('a'", "concat('a',)", "'a' 'b'", "a.b.", "1 +"])
def test_syntax_errors(bad):
    with pytest.raises(ExprSyntaxError):
        parse_expression(bad)


def test_syntax_error_becomes_unknown_when_evaluated():
    assert "cannot parse" in ev().value("[concat('a']", S).reason


@pytest.mark.parametrize("order", ["literal first", "copy first"])
def test_property_both_literal_and_by_copy_loop_is_an_error(order):
    from nsgsolve.errors import InputError

    literal = '"securityRules": [{"name": "lit"}]'
    loop = '"copy": [{"name": "securityRules", "count": 1, "input": {"name": "looped"}}]'
    body = f"{literal},\n {loop}" if order == "literal first" else f"{loop},\n {literal}"
    text = "{" + body + "}"
    with pytest.raises(InputError) as e:
        ev().value(parse(text, "t.json"), S)
    d = e.value.diagnostics[0]
    assert (
        d.code == "E627" and "securityRules" in d.message and "both literally and by a property copy loop" in d.message
    )
    line = text.splitlines()[d.span.line - 1]
    assert line[d.span.column - 1:].startswith('"securityRules", "count"')


# The functions of the template-functions reference a network template may use (docs/import.md).
@pytest.mark.parametrize("expr,expected", [
    ("[tryGet(json('{\"a\": {\"b\": 1}}'), 'a', 'b')]", 1),
    ("[tryGet(json('{\"a\": {\"b\": 1}}'), 'x', 'b')]", None),
    ("[tryGet(createArray(1, 2), 5)]", None),
    ("[coalesce(tryGet(json('{}'), 'nsg'), 'default-nsg')]", "default-nsg"),
    ("[indexFromEnd(createArray(1, 2, 3), 1)]", 3),
    ("[indexFromEnd(createArray(1, 2, 3), 4)]", Unknown),
    ("[tryIndexFromEnd(createArray(1, 2, 3), 4)]", None),
    ("[indexOf(createArray('a', 'b'), 'b')]", 1),
    ("[lastIndexOf(createArray('a', 'b', 'a'), 'a')]", 2),
    ("[indexOf('abcB', 'B')]", 1),
    ("[length(items(json('{\"b\": 2, \"a\": 1}')))]", 2),
    ("[map(range(0, 3), lambda('i', mul(lambdaVariables('i'), 2)))]", [0, 2, 4]),
    ("[map(createArray('a', 'b'), lambda('x', 'i', concat(lambdaVariables('x'), string(lambdaVariables('i')))))]",
     ["a0", "b1"]),
    ("[filter(createArray(1, 2, 3, 4), lambda('x', greater(lambdaVariables('x'), 2)))]", [3, 4]),
    ("[filter(createArray(1, 2), lambda('x', 'yes'))]", Unknown),  # a filter must decide true/false
    ("[reduce(createArray(1, 2, 3), 0, lambda('c', 'n', add(lambdaVariables('c'), lambdaVariables('n'))))]", 6),
    ("[sort(createArray(3, 1, 2), lambda('a', 'b', less(lambdaVariables('a'), lambdaVariables('b'))))]", [1, 2, 3]),
    ("[groupBy(createArray('ab', 'ac', 'b'), lambda('x', substring(lambdaVariables('x'), 0, 1)))]",
     {"a": ["ab", "ac"], "b": ["b"]}),
    ("[mapValues(json('{\"a\": 1}'), lambda('v', add(lambdaVariables('v'), 1)))]", {"a": 2}),
    ("[toObject(createArray('web', 'db'), lambda('x', lambdaVariables('x')), "
     "lambda('x', length(lambdaVariables('x'))))]",
     {"web": 3, "db": 2}),
    ("[lambdaVariables('x')]", Unknown),
    ("[shallowMerge(createArray(json('{\"a\": 1, \"c\": {\"x\": 1}}'), json('{\"b\": 2, \"c\": {\"y\": 2}}')))]",
     {"a": 1, "b": 2, "c": {"y": 2}}),
    # A later key replaces an earlier one of another case (the converter reads keys without regard to case).
    ("[union(json('{\"access\": \"Allow\", \"priority\": 1}'), createObject('Access', 'Deny'))]",
     {"priority": 1, "Access": "Deny"}),
    ("[shallowMerge(createArray(json('{\"Access\": \"Deny\"}'), json('{\"access\": \"Allow\"}')))]",
     {"access": "Allow"}),
    ("[objectKeys(json('{\"a\": 1, \"b\": 2}'))]", ["a", "b"]),
    ("[parseCidr('10.144.0.0/20').lastUsable]", "10.144.15.254"),
    ("[parseCidr('10.144.0.0/20').broadcast]", "10.144.15.255"),
    ("[sys.cidrSubnet('10.0.0.0/16', 24, 3)]", "10.0.3.0/24"),
    ("[cidrHost(cidrSubnet('10.0.0.0/16', 24, 1), 3)]", "10.0.1.4"),
    ("[base64ToString(base64('x'))]", "x"),
    ("[base64ToJson(base64('{\"a\": 1}')).a]", 1),
    ("[uriComponentToString(uriComponent('a b/c'))]", "a b/c"),
    ("[dataUriToString(dataUri('hi'))]", "hi"),
    ("[tenantResourceId('Microsoft.Network/x', 'n')]", "/providers/Microsoft.Network/x/n"),
    ("[extensionResourceId('/subscriptions/s', 'Microsoft.Authorization/locks', 'l')]",
     "/subscriptions/s/providers/Microsoft.Authorization/locks/l"),
    ("[references('x')]", Unknown),
    ("[dateTimeAdd(utcNow(), 'P1D')]", Unknown),
    ("[flatten(createArray(createArray('10.0.0.0/24'), createArray('10.0.1.0/24', '10.0.2.0/24')))]",
     ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]),
    ("[flatten(createArray(1, 2))]", Unknown),  # not an array of arrays: Azure rejects it too
    ("[deployer().objectId]", Unknown),  # who deploys is not in the template
])
def test_template_functions_reference(expr, expected):
    v = ev().expression(expr, S)
    if expected is Unknown:
        assert isinstance(v, Unknown)
    else:
        assert v == expected


def test_lambda_sees_the_copy_index_of_where_it_is_written():
    v = ev().expression("[map(range(0, 2), lambda('i', add(lambdaVariables('i'), copyIndex())))]", S,
                        {"\0resource": 10})
    assert v == [10, 11]


def test_user_defined_functions_see_only_their_parameters():
    e = ev(params={"p": {"type": "string", "defaultValue": "outer"}})
    e.set_functions([{"namespace": "net", "members": {
        "nsgName": {"parameters": [{"name": "base", "type": "string"}],
                    "output": {"type": "string", "value": "[concat(parameters('base'), '-nsg')]"}},
        "wrong": {"parameters": [], "output": {"type": "string", "value": "[parameters('p')]"}}}}])
    assert e.expression("[net.nsgName(parameters('p'))]", S) == "outer-nsg"
    assert e.expression("[NET.NSGNAME('web')]", S) == "web-nsg"
    assert isinstance(e.expression("[net.wrong()]", S), Unknown)  # the template's parameters are not in scope
    assert isinstance(e.expression("[net.nsgName()]", S), Unknown)  # wrong number of arguments
    assert isinstance(e.expression("[other.fn()]", S), Unknown)
