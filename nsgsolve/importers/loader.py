"""Load a policy from any input nsgsolve reads, detected from the name and the content.

What a file is comes from one table, :data:`INPUT_KINDS`: each row says how to recognise a kind of file
(extensions, a test of its content) and either how to read it or, for a kind nsgsolve does not read,
which error names it. A new input format is a new row (and its reader), nothing else:

* ``.nsg`` text (the policy language) → :func:`nsgsolve.lang.build.parse_policy`
* JSON (ARM template, ``az`` CLI export, REST example) → :mod:`nsgsolve.importers`
* JSON ``terraform show -json`` output (a plan or a state) → :mod:`nsgsolve.importers.tfplan`
* Terraform (``.tf`` files, a directory of them, ``.tfvars``) → :func:`nsgsolve.importers.load_terraform_policy`
* Bicep (``.bicep``, ``.bicepparam``, a directory of them) → :mod:`nsgsolve.importers.bicep`, with the JSON inputs
* YAML, XML, scripts, binary files → E004..E009 naming the kind and what nsgsolve reads,
  rather than the grammar error a file of another language would otherwise get.

Several JSON files (``az network nsg list`` + ``az network vnet list`` + ...) make one policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from nsgsolve.errors import Diagnostic, InputError
from nsgsolve.model import Policy, Span
from nsgsolve.importers import files
from nsgsolve.importers.files import looks_like_json

# A reader: (path → text of every input of its kind, import options) → one policy.
Reader = Callable[..., Policy]


@dataclass(frozen=True)
class InputKind:
    """One kind of input file.

    ``extensions`` decide first (lower case, with the dot; a file named so is this kind whatever it holds);
    a file with an extension no row claims is recognised by ``sniff(text)``, rows tried in table order.
    ``reader`` is None for a kind nsgsolve does not read: ``code`` and ``hint`` then say so.
    ``group``: inputs of one group make one policy together (JSON files do; a .nsg file is alone)."""

    name: str
    what: str  # for messages: "an ARM template or az export (JSON)"
    extensions: tuple[str, ...] = ()
    sniff: Callable[[str], bool] | None = None
    reader: Reader | None = None
    code: str = ""
    hint: str = ""
    group: str = ""


def _first_lines(text: str, n: int = 40) -> list[str]:
    """The first ``n`` lines that are neither blank nor comments (``#`` and ``//``)."""
    out = []
    for line in text.split("\n"):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("//"):
            continue
        out.append(s)
        if len(out) >= n:
            break
    return out


def _looks_like_xml(text: str) -> bool:
    return text.lstrip()[:1] == "<"


# Bicep: `param x string`, `resource nsg 'Microsoft.Network/...@2023-04-01' = {`, `targetScope = '...'`,
# `module m './x.bicep' = {`, `var x = ...`, `@description(...)` decorators. No policy statement starts so.
_BICEP = re.compile(r"^(?:param\s+\w+\s+\w|resource\s+\w+\s+'[^']*@|module\s+\w+\s+'|targetScope\s*=|"
                    r"var\s+\w+\s*=|output\s+\w+\s+\w+\s*=|@\w+\(|import\s+'|metadata\s+\w+\s*=|type\s+\w+\s*=)")
# HCL (Terraform): `resource "azurerm_x" "name" {`, `variable "x" {`, `provider "azurerm" {`, `terraform {`.
_HCL = re.compile(r'^(?:(?:resource|data)\s+"[^"]+"\s+"[^"]+"\s*\{|(?:variable|output|provider|module)\s+"[^"]+"\s*\{|'
                  r'(?:terraform|locals)\s*\{)')
# YAML: a document marker, or `key:` / `- key:` at the start of the first meaningful line.
_YAML = re.compile(r"^(?:---|%YAML|-\s+[\w.\-\"']+\s*:(?:\s|$)|[\w.\-\"']+\s*:(?:\s|$))")
_SCRIPT = re.compile(r"^(?:#!|\$\w+\s*=|(?:az|azcopy|Connect-AzAccount|New-Az\w+|Get-Az\w+|Set-Az\w+)\b)")


def _looks_like_bicep(text: str) -> bool:
    return any(_BICEP.match(s) for s in _first_lines(text))


def _looks_like_hcl(text: str) -> bool:
    return any(_HCL.match(s) for s in _first_lines(text))


def _looks_like_yaml(text: str) -> bool:
    lines = _first_lines(text, 1)
    return bool(lines) and bool(_YAML.match(lines[0]))


def _looks_like_script(text: str) -> bool:
    head = text.lstrip()
    return head.startswith("#!") or any(_SCRIPT.match(s) for s in _first_lines(text, 5))


def _read_nsg(texts: dict[str, str], **opts) -> Policy:
    paths = list(texts)
    if len(paths) != 1:
        raise InputError.single("E003", f"several .nsg files given ({', '.join(paths)}); a policy is one .nsg file",
                                Span(paths[1], 0, 0),
                                "put the whole policy in one .nsg file (the language has no 'include'); "
                                "only JSON inputs (ARM templates, az exports) may be split over several files")
    from nsgsolve.lang.build import parse_policy

    return parse_policy(texts[paths[0]], paths[0], opts.get("warnings"))


def _read_json(texts: dict[str, str], **opts) -> Policy:
    from nsgsolve.importers.combine import load_json_policy

    opts.pop("tf_vars", None)
    opts.pop("tf_var_files", None)
    return load_json_policy(texts, read=read_text, **opts)


def _read_terraform(texts: dict[str, str], **opts) -> Policy:
    from nsgsolve.importers.combine import load_terraform_policy

    return load_terraform_policy(texts, **opts)


# Rows are tried in order for content; the policy language is last: what nothing else claims is read as
# a policy, and its syntax errors are then the right answer.
INPUT_KINDS: list[InputKind] = [
    InputKind("json", "JSON: an ARM template (and its parameters files), az CLI / REST output or "
                      "'terraform show -json' output",
              (".json", ".jsonc"), looks_like_json, _read_json, group="json"),
    # Bicep goes with JSON: a .bicep file is evaluated into the resources of an ARM template, and may be
    # given with ARM templates, parameters files and az exports (one policy).
    InputKind("bicep", "Bicep (.bicep files, a directory of them, .bicepparam)", (".bicep", ".bicepparam"),
              _looks_like_bicep, _read_json, group="json"),
    InputKind("terraform", "a Terraform configuration (.tf or .tf.json files, a directory of them, .tfvars)",
              (".tf", ".tf.json", ".tfvars", ".hcl"), _looks_like_hcl, _read_terraform, group="terraform"),
    InputKind("yaml", "a YAML file", (".yaml", ".yml"), _looks_like_yaml, code="E007",
              hint="YAML (pipelines, Kubernetes manifests, Ansible) holds no NSG policy nsgsolve reads; give the "
                   "ARM template or the az export the pipeline deploys"),
    InputKind("xml", "an XML file", (".xml", ".config", ".csproj"), _looks_like_xml, code="E008",
              hint="give the ARM template or az export JSON instead"),
    InputKind("script", "a shell or PowerShell script", (".sh", ".ps1", ".psm1", ".bash", ".azcli", ".cmd",
                                                          ".bat", ".py"),
              _looks_like_script, code="E009",
              hint="run the script's deployment, then export what it made with 'az network nsg list' (and vnet "
                   "list, nic list) and give nsgsolve that JSON"),
    InputKind("nsg", "an nsgsolve policy file", (".nsg",), lambda _t: True, _read_nsg, group="nsg"),
]

def what_nsgsolve_reads() -> str:
    return "; ".join(k.what for k in INPUT_KINDS if k.reader is not None)


def kind_named(name: str) -> InputKind:
    return next(k for k in INPUT_KINDS if k.name == name)


def detect(path: str, text: str) -> InputKind:
    """The kind of an input: its extension if a row claims it, else the first row whose content test holds."""
    suffix = Path(path).suffix.lower()
    if path.lower().endswith(".tf.json"):
        suffix = ".tf.json"  # Terraform's JSON syntax, not a JSON document of another kind
    for k in INPUT_KINDS:
        if suffix in k.extensions:
            return k
    for k in INPUT_KINDS:
        if k.sniff is not None and k.sniff(text):
            return k
    return INPUT_KINDS[-1]


def refuse(path: str, kind: InputKind) -> InputError:
    return InputError.single(kind.code, f"{path} is {kind.what}, which nsgsolve does not read",
                             Span(str(path), 0, 0), f"{kind.hint}. nsgsolve reads: {what_nsgsolve_reads()}")


def read_text(path: str | Path) -> str:
    """Read an input file (:func:`nsgsolve.importers.files.read_text`); a binary file is told what nsgsolve reads."""
    return files.read_text(path, what_nsgsolve_reads())


def load_policy(paths: str | Path | Sequence[str | Path], params: dict[str, str] | None = None,
                params_file: str | Path | None = None, symbolic: bool = False,
                warnings: list[Diagnostic] | None = None, strict: bool = False, tf_vars: list[str] | None = None,
                tf_var_files: list[str] | None = None) -> Policy:
    """Read one policy from one ``.nsg`` file, from one or more JSON files, or from Terraform configurations
    (``tf_vars``: ``--var NAME=VALUE`` items; ``tf_var_files``: ``--var-file`` paths).

    Warnings (W codes) are appended to ``warnings`` when a list is given; they never stop a load.
    ``strict``: a template value that cannot be evaluated offline is an error (E610) instead of a
    placeholder or a symbolic value with a warning (docs/import.md).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    # A directory of .tf files is a Terraform module; its reader lists the files itself. A directory of
    # .bicep files stands for the files deployed on their own (not those used as modules by the others).
    texts: dict[str, str] = {}
    for p in paths:
        if _is_tf_dir(p):
            texts[str(p)] = ""
        elif _is_bicep_dir(p):
            from nsgsolve.importers.bicep import entry_files

            texts.update({str(f): read_text(f) for f in entry_files(Path(p))})
        else:
            texts[str(p)] = read_text(p)
    return load_texts(texts, params=params, params_file=params_file, symbolic=symbolic, warnings=warnings,
                      strict=strict, tf_vars=tf_vars, tf_var_files=tf_var_files)


def is_module_dir(path: str | Path) -> bool:
    """A directory read as one policy: a Terraform module or Bicep files."""
    return _is_tf_dir(path) or _is_bicep_dir(path)


def _is_bicep_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and any(p.glob("*.bicep"))


def _is_tf_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (any(p.glob("*.tf")) or any(p.glob("*.tf.json")))


def load_texts(texts: dict[str, str], params: dict[str, str] | None = None,
               params_file: str | Path | None = None, symbolic: bool = False,
               warnings: list[Diagnostic] | None = None, strict: bool = False, tf_vars: list[str] | None = None,
               tf_var_files: list[str] | None = None) -> Policy:
    """:func:`load_policy` of texts already read (path → text; ``diff`` reads a revision with git)."""
    paths = list(texts)
    kinds = {p: kind_named("terraform") if _is_tf_dir(p) else detect(p, texts[p]) for p in paths}
    for p in paths:
        if kinds[p].reader is None:
            raise refuse(p, kinds[p])
    groups = {kinds[p].group for p in paths}
    if len(groups) > 1:
        first = kinds[paths[0]]
        other = next(p for p in paths if kinds[p].group != first.group)
        raise InputError.single("E003", f"cannot mix {first.what} ({paths[0]}) with {kinds[other].what} ({other}) "
                                        "in one policy", Span(other, 0, 0),
                                "give files of one kind: one .nsg file, or JSON files (ARM template or az exports)")
    reader = kinds[paths[0]].reader
    assert reader is not None
    if kinds[paths[0]].group == "nsg":
        return reader(texts, warnings=warnings)
    return reader(texts, params=params or {}, params_file=params_file, symbolic=symbolic, warnings=warnings,
                  strict=strict, tf_vars=tf_vars, tf_var_files=tf_var_files)
