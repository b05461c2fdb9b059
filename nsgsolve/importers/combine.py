"""JSON, Bicep and Terraform inputs → one policy: :func:`load_json_policy` and :func:`load_terraform_policy`.

Read what Azure users already have: ARM templates, az CLI / REST exports, parameters files.
:mod:`nsgsolve.importers` re-exports these functions; they live here, not in the package's ``__init__``, so
that importing any importer module (the loader, for a ``.nsg`` file) does not import the ARM, Bicep and
Terraform readers.

:func:`load_json_policy` is what :func:`nsgsolve.importers.loader.load_policy` calls for JSON inputs. Several files
make one policy (``az network nsg list`` + ``az network vnet list`` + ``az network nic list``, or a
template and its parameters file). Every problem is an :class:`~nsgsolve.errors.InputError` whose
diagnostics point into the files; see docs/import.md for the codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from nsgsolve.errors import Diagnostic, DiagnosticBag, InputError
from nsgsolve.gcpause import gc_paused
from nsgsolve.model import ParamDecl, Policy, Span, param_name
from nsgsolve.importers import arm, azcli, bicep, jsonpos
from nsgsolve.importers import files
from nsgsolve.validate import validate_into
from nsgsolve.importers.armexpr import LOCATION, LOCATION_PLACEHOLDER
from nsgsolve.importers.convert import PolicyBuilder, symbolic_name
from nsgsolve.model import PARAM_PREFIX

__all__ = ["load_json_policy", "load_terraform_policy", "classify"]


def is_terraform_json(doc: Any) -> bool:
    """``terraform show -json`` output (a plan or a state). Here, not in tfplan: telling the kinds of JSON
    apart must not import the Terraform reader (and Lark, for HCL) for every ARM template."""
    return isinstance(doc, dict) and "format_version" in doc and (
        "terraform_version" in doc or "planned_values" in doc or "values" in doc) and (
        "values" in doc or "planned_values" in doc or "resource_changes" in doc)


def classify(doc: Any) -> str:
    """``template``, ``parameters``, ``az``, ``terraform`` (``terraform show -json``), ``bicep`` (a Bicep
    program), ``bicepparam`` (a .bicepparam file) or ``unknown``."""
    if isinstance(doc, bicep.Program):
        return "bicep"
    if isinstance(doc, bicep.ParameterFile):
        return "bicepparam"
    if is_terraform_json(doc):
        return "terraform"
    if arm.is_template(doc):
        return "template"
    if arm.is_parameters_file(doc):
        return "parameters"
    if azcli.is_az_document(doc):
        return "az"
    return "unknown"


@gc_paused()  # a large template builds a large model: no collector passes over it while it grows
def load_json_policy(texts: Mapping[str, str], params: Mapping[str, str] | None = None,
                     params_file: str | Path | None = None, symbolic: bool = False,
                     warnings: list[Diagnostic] | None = None, strict: bool = False,
                     read: Callable[[str], str] = files.read_text) -> Policy:
    """One policy from JSON inputs (path → text). ``params`` (``--param``) override a parameters file,
    which overrides template defaults; a parameters file may also be given among the inputs.
    Warnings (W codes) are appended to ``warnings`` when a list is given.

    Unless ``strict``, a parameter without a value does not stop the import: where it makes a name its
    name is used, a rule's addresses or ports made from it are left open (as ``symbolic`` does for any
    value nsgsolve cannot compute), and one W601 per parameter says what was assumed. ``strict`` makes
    every such value E610, as ``symbolic`` alone then relaxes for rule addresses and ports. ``read`` reads
    the parameters file (the loader passes its own reader, whose messages know every input kind)."""
    bicep_notes: list[Diagnostic] = []
    reader = bicep.Reader(read, bicep_notes.append)
    docs = {p: _parse(p, t, reader) for p, t in texts.items()}
    values: dict[str, Any] = {}
    files = [p for p, d in docs.items() if classify(d) in ("parameters", "bicepparam")]
    if params_file is not None:
        pf = str(params_file)
        docs_pf = _parse(pf, read(pf), reader)
        if classify(docs_pf) not in ("parameters", "unknown", "bicepparam") or \
                not isinstance(docs_pf, (dict, bicep.ParameterFile)):
            raise InputError.single("E602", f"{pf} is not a deployment parameters file", Span(pf, 1, 1))
        files.insert(0, pf)
        docs = {pf: docs_pf, **docs}
    for p in files:
        d = docs[p]
        values.update(d.values if isinstance(d, bicep.ParameterFile) else arm.parameter_values(d, p))
    values.update(params or {})
    if not any(classify(d) not in ("parameters", "bicepparam") for d in docs.values()):
        # Only .bicepparam files: each names the Bicep file it is for ('using'), which is then the template.
        for p in files:
            d = docs[p]
            if isinstance(d, bicep.ParameterFile) and d.using:
                docs[d.using] = reader.program(d.using, None, Span(p, 1, 1))
    for p in files:
        d = docs[p]
        progs = [x for x in docs.values() if isinstance(x, bicep.Program)]
        if isinstance(d, bicep.ParameterFile) and len(progs) == 1:
            bicep.check_parameter_file(d.values, progs[0], p)

    if all(classify(d) in ("terraform", "az") for d in docs.values()) and \
            any(classify(d) == "terraform" for d in docs.values()):
        # A plan's values known only after apply are left open as for .tf files: they are the plan's nature.
        from nsgsolve.importers.tfconvert import TF_HINT

        builder = PolicyBuilder(symbolic=not strict, unknown_code="E662", unknown_hint=TF_HINT, strict=strict)
    else:
        builder = PolicyBuilder(symbolic=symbolic or not strict, strict=strict)
    tf_bag = DiagnosticBag()
    unset: dict[str, Span] = {}
    placeholders: set[str] = set()
    declared: set[str] = set()
    used_any = False
    for p, doc in docs.items():
        kind = classify(doc)
        if kind in ("parameters", "bicepparam"):
            continue
        if kind == "bicep":
            declared |= bicep.declared_parameters(doc)
            ev = bicep.BicepEvaluator.for_program(doc, values, lenient=not strict)
            placeholders |= arm.import_template(doc.template, p, builder, values, lenient=not strict, unset=unset,
                                                evaluator=ev)
            used_any = True
            continue
        if kind == "template":
            declared |= arm.declared_parameters(doc)
            placeholders |= arm.import_template(doc, p, builder, values, lenient=not strict, unset=unset)
            used_any = True
        elif kind == "az":
            azcli.import_az(doc, p, builder)
            used_any = True
        elif kind == "terraform":
            from nsgsolve.importers.tfplan import import_terraform_json

            tf_bag.items += import_terraform_json(doc, p, builder).items
            used_any = True
        else:
            raise InputError.single(
                "E603", f"{p}: not an ARM template, parameters file or az/REST export of NSGs, VNets or NICs",
                getattr(doc, "span", Span(p, 1, 1)),
                "nsgsolve reads ARM templates (with 'resources'), 'az network nsg/vnet/nic list' output, "
                "REST API responses and 'terraform show -json' output")
    if not used_any:
        raise InputError.single("E603", "only parameters files were given; add the template they belong to",
                                Span(next(iter(docs)), 1, 1))
    if params and declared:
        for name in params:
            if name.lower() not in declared:
                from nsgsolve.errors import did_you_mean

                raise InputError.single("E604", f"--param {name}: no template declares a parameter '{name}'",
                                        Span(next(p for p in docs if classify(docs[p]) in ("template", "bicep")), 1, 1),
                                        did_you_mean(name, sorted(declared)))
    if warnings is not None:
        warnings.extend(bicep_notes)
        warnings.extend(tf_bag.warnings)
    tf_bag.raise_if_errors()
    try:
        policy = builder.build(", ".join(p for p in texts))
    finally:  # the assumptions come before the errors they may explain
        if warnings is not None:
            warnings.extend(_unset_warnings(unset, builder.unset_uses, params_file))
            warnings.extend(builder.bag.warnings)
    if LOCATION_PLACEHOLDER in placeholders:
        policy = _refuse_located_tags(policy, "location" in declared, strict, warnings)
    _validate_imported(policy, warnings)
    # Nearly every template reads its resource group's region for resources' 'location', which nsgsolve
    # ignores; only a tag named with it matters, and that is E628 above.
    placeholders.discard(LOCATION_PLACEHOLDER)
    if placeholders:
        note = (f"names built with {', '.join(sorted(placeholders))} use nsgsolve's placeholders (resource group "
                f"'resourceGroup', subscription 0000..., hashes), not Azure's values")
        from dataclasses import replace

        policy = replace(policy, notes=policy.notes + (note,))
    return policy


def _parse(path: str, text: str, reader: bicep.Reader) -> Any:
    """A JSON input, a Bicep program or a .bicepparam file, by the file's name."""
    low = path.lower()
    if low.endswith(bicep.BICEPPARAM_SUFFIXES) or not files.looks_like_json(text) and \
            text.lstrip().startswith("using "):
        return bicep.read_parameter_file(text, path, reader)
    if low.endswith(bicep.BICEP_SUFFIXES) or not files.looks_like_json(text) and not low.endswith((".json", ".jsonc")):
        return reader.program(path, text)
    return jsonpos.parse(text, path)


def load_terraform_policy(texts: Mapping[str, str], tf_vars: list[str] | None = None,
                          tf_var_files: list[str] | None = None, warnings: list[Diagnostic] | None = None,
                          strict: bool = False, **_ignored: Any) -> Policy:
    """One policy from Terraform configurations (.tf files, directories, .tfvars files among them: path → text,
    a directory's text empty).

    What cannot be evaluated offline is left open as ARM's symbolic mode does, with a warning (W620-W624,
    docs/import.md "Terraform"): an unset variable is the normal case for a module read on its own.
    ``strict``: those warnings are errors (E662) instead."""
    from nsgsolve.errors import Diagnostic as _D
    from nsgsolve.importers.terraform import import_configuration
    from nsgsolve.importers.tfconvert import TF_HINT

    builder = PolicyBuilder(symbolic=not strict, unknown_code="E662", unknown_hint=TF_HINT)
    paths = list(texts)
    bag = import_configuration(paths, builder, var_files=tf_var_files, cli_vars=tf_vars)
    if strict:
        bag.items = [_D("E662", d.message + " (--strict)", d.span, d.hint) if d.severity == "warning" else d
                     for d in bag.items]
    if warnings is not None:
        warnings.extend(bag.warnings)
    bag.raise_if_errors()
    try:
        policy = builder.build(", ".join(paths))
    finally:
        if warnings is not None:
            warnings.extend(builder.bag.warnings)
    _validate_imported(policy, warnings)
    return policy


def _validate_imported(policy: Policy, warnings: list[Diagnostic] | None) -> None:
    """Hold an imported policy to the same rules as a .nsg file (references, limits, topology), so an import
    never writes a file that does not load back, and nothing is answered from an invalid model. Open values
    ('?expr:...') and unset parameters are undefined names on purpose: resolution stops on the former and
    answers for every value of the latter (docs/import.md)."""
    bag = DiagnosticBag()
    validate_into(policy, bag)
    bag.items = [d for d in bag.items if symbolic_name("") not in d.message and PARAM_PREFIX not in d.message]
    if warnings is not None:
        warnings.extend(bag.warnings)
    bag.raise_if_errors()


def _refuse_located_tags(policy: Policy, has_location_parameter: bool, strict: bool = True,
                         warnings: list[Diagnostic] | None = None) -> Policy:
    """A service tag named with the resource group's region (``Storage.[location]``): offline that region
    is nsgsolve's placeholder, so the tag would be one that does not exist (and E301 would then blame
    missing tag data). ``strict``: E628. Otherwise the side is left open (symbolic) with W603, like any
    other value nsgsolve cannot know offline."""
    from dataclasses import replace

    from nsgsolve.model import Ref, TagSide

    if not strict:
        nsgs = []
        params = {d.name: d for d in policy.params}
        for nsg in policy.nsgs:
            rules = []
            for rule in nsg.rules:
                for attr in ("source", "destination"):
                    side = getattr(rule, attr)
                    if isinstance(side, TagSide) and LOCATION in side.tag.name.lower().split("."):
                        # Whatever the region, the tag is one of the family's regional tags: a parameter
                        # over those of the tag data (resolve.regional_family), never a guessed region.
                        family = side.tag.name.split(".")[0]
                        name = side.tag.name
                        params.setdefault(name, ParamDecl(name, (f"{family}.*",), side.tag.span))
                        how = ("give the region with --param location=westeurope (or in a parameters file)"
                               if has_location_parameter else
                               "the template reads resourceGroup().location directly: in a copy, add a 'location' "
                               "parameter used here and give --param location=westeurope")
                        if warnings is not None:
                            warnings.append(Diagnostic(
                                "W603", f"service tag '{side.tag.name}' of rule '{rule.name}' (NSG {nsg.name}) is "
                                        f"named with the resource group's region, unknown offline; the rule's {attr} "
                                        f"is one of the regional tags {family}.<Region> of the tag data (symbolic: "
                                        f"query, check and lint answer for every region; without tag data they "
                                        f"stop with E301)", side.tag.span,
                                f"{how}; --strict makes this an error (E628)", "warning"))
                        changes: dict[str, Any] = {
                            attr: TagSide(Ref(param_name(name), side.tag.span), side.span),
                            "notes": rule.notes + (f"{attr} {side.tag.name}: the region is not known offline; "
                                                   f"any regional tag {family}.<Region>",)}
                        rule = replace(rule, **changes)
                rules.append(rule)
            nsgs.append(replace(nsg, rules=tuple(rules)))
        return replace(policy, nsgs=tuple(nsgs), params=tuple(params.values()))
    bag = DiagnosticBag()
    for nsg in policy.nsgs:
        for rule in nsg.rules:
            for side in (rule.source, rule.destination):
                if isinstance(side, TagSide) and LOCATION in side.tag.name.lower().split("."):
                    how = ("give the region with --param location=eastus (or in a --params-file)"
                           if has_location_parameter else
                           "the template reads resourceGroup().location directly, which nsgsolve cannot know offline: "
                           "in a copy of the template, add a 'location' parameter (default "
                           "[resourceGroup().location]) used here, then give --param location=eastus")
                    bag.error("E628", f"service tag '{side.tag.name}' of rule '{rule.name}' (NSG {nsg.name}) is built "
                                      f"from nsgsolve's placeholder '{LOCATION}' for resourceGroup().location, "
                                      "not a real region", side.tag.span, how)
    bag.raise_if_errors()
    return policy


def _unset_warnings(unset: Mapping[str, Span], uses: Mapping[str, list[str]],
                    params_file: str | Path | None) -> list[Diagnostic]:
    """W601, once per parameter that has no value: what nsgsolve assumed for it and how to pin it."""
    out = []
    for name, span in sorted(unset.items(), key=lambda kv: kv[0].lower()):
        did = uses.get(name)
        if not did:  # only read by resources nsgsolve does not model (a VM's size, a DNS name, ...)
            continue
        pin = f"give the value with --param {name}=VALUE"
        pin += " or in the parameters file" if params_file else " or a parameters file (--params-file FILE)"
        out.append(Diagnostic("W601", f"parameter '{name}' has no value (no default, not given): "
                                      + "; ".join(did), span,
                              f"{pin}; --strict makes this an error (E610)", "warning"))
    return out
