"""Reading Terraform: python-hcl2's parser on real and generated .tf files, and the whole import.

Columns (medians of --runs runs, milliseconds):
  tree     python-hcl2's Lark parse (hcl2.api.parses_to_tree), what nsgsolve uses: it keeps positions
  loads    python-hcl2's own dictionary API (hcl2.loads: parse + its transformer), the naive way, no positions
  import   nsgsolve's whole import (parse, evaluate, convert, build, validate)
  ratio    loads / tree

The first parse in a fresh environment also builds the LALR tables (python-hcl2 caches them next to its
grammar); that one-off cost is printed separately. The machine is shared with other work: figures vary.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = next((c / "terraform" for c in (ROOT.parent / "shared" / "corpus", Path("/work/shared/corpus"))
               if (c / "terraform").is_dir()), Path("/nonexistent"))


def generated(n_nsgs: int, rules: int) -> str:
    out = [
        'variable "prefix" { default = "gen" }',
        'resource "azurerm_virtual_network" "v" {\n  name = "${var.prefix}-vnet"\n  address_space = ["10.0.0.0/8"]\n}',
    ]
    for i in range(n_nsgs):
        out.append(f'resource "azurerm_subnet" "s{i}" {{\n  name = "s{i}"\n  virtual_network_name = '
                   f'azurerm_virtual_network.v.name\n  address_prefixes = [cidrsubnet("10.0.0.0/8", 16, {i})]\n}}')
        body = [f'resource "azurerm_network_security_group" "n{i}" {{\n  name = "${{var.prefix}}-nsg-{i}"']
        for r in range(rules):
            body.append(f'''  security_rule {{
    name                       = "r{r}"
    priority                   = {100 + r}
    direction                  = "{'Inbound' if r % 2 else 'Outbound'}"
    access                     = "{'Allow' if r % 3 else 'Deny'}"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["{1000 + r}", "{2000 + r}-{2100 + r}"]
    source_address_prefix      = "10.{r % 250}.0.0/16"
    destination_address_prefix = "VirtualNetwork"
  }}''')
        body.append("}")
        out.append("\n".join(body))
        out.append(f'resource "azurerm_subnet_network_security_group_association" "a{i}" {{\n'
                   f'  subnet_id = azurerm_subnet.s{i}.id\n  network_security_group_id = '
                   f'azurerm_network_security_group.n{i}.id\n}}')
    return "\n\n".join(out) + "\n"


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import hcl2
    from hcl2.api import parses_to_tree

    from nsgsolve.importers.loader import load_policy

    t = time.perf_counter()
    parses_to_tree("a = 1\n")
    print(
        f"first parse (LALR tables built or loaded from python-hcl2's cache): {(time.perf_counter() - t) * 1000:.0f} ms"
    )
    cases: list[tuple[str, Path]] = []
    if CORPUS.is_dir():
        cases += [(p.name, p) for p in sorted(CORPUS.glob("*.tf"))]
    tmp = Path(tempfile.mkdtemp())
    for n, r in ((10, 20), (20, 100)):
        p = tmp / f"gen-{n}x{r}.tf"
        p.write_text(generated(n, r))
        cases.append((p.name, p))
    print(f"{'file':42} {'KB':>6} {'tree':>8} {'loads':>8} {'import':>8} {'ratio':>6}")
    for name, p in cases:
        text = p.read_text()
        tree = median_ms(lambda: parses_to_tree(text), args.runs)
        loads = median_ms(lambda: hcl2.loads(text), args.runs)
        imp = median_ms(lambda: load_policy(str(p), warnings=[]), args.runs)
        print(f"{name:42} {len(text) / 1024:6.1f} {tree:8.1f} {loads:8.1f} {imp:8.1f} {loads / tree:6.2f}")


if __name__ == "__main__":
    main()
