"""ARM templates and az exports, mutated: dropped keys, wrong types, nulls, hostile values (priorities 99/4097/
"100", ports "80-70"/"0"/"65536", /33, 300.1.1.1, IPv6), malformed and deeply nested expressions, huge arrays,
duplicated elements, and damage to the JSON text itself. Every command runs on every input."""

from __future__ import annotations

from hypothesis import given, strategies as st

from fuzz_harness import arm_seed, az_seed, damage_text, dump, fuzz_settings, mutate, policy_commands, run_cli


@fuzz_settings(15)
@given(data=st.data())
def test_arm_templates(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arm")
    doc = mutate(data, arm_seed())
    text = damage_text(data, dump(doc, data.draw(st.integers(0, 2), label="style")))
    path = tmp / "azuredeploy.json"
    path.write_text(text, encoding="utf-8")
    for argv in policy_commands(str(path), tmp):
        run_cli("arm", argv)


@fuzz_settings(15)
@given(data=st.data())
def test_az_exports(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("az")
    doc = mutate(data, az_seed())
    text = damage_text(data, dump(doc, data.draw(st.integers(0, 2), label="style")))
    path = tmp / "export.json"
    path.write_text(text, encoding="utf-8")
    for argv in policy_commands(str(path), tmp):
        run_cli("az", argv)
