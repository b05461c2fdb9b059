"""The command lines whose output is pinned in tests/golden/ (text and JSON of every command).

Each case is (name, argv, json schema or None). Paths are relative to the repository root, where the
golden test runs them; corpus files are written ``{corpus}/...`` and the case is skipped (with the
reason printed) when the shared corpus is absent.
"""

from __future__ import annotations

EX = "examples"
CHANGED = "tests/golden/inputs/webservers-changed.nsg"

CASES: list[tuple[str, list[str], str | None]] = []


def case(name: str, *argv: str, schema: str | None = None) -> None:
    CASES.append((name, list(argv), schema))


for ex in ("webservers", "three-tier", "hub-spoke"):
    f = f"{EX}/{ex}.nsg"
    case(f"show-{ex}", "show", f)
    case(f"show-{ex}-json", "show", f, "--json", schema="show")
    case(f"fmt-{ex}", "fmt", f)
    case(f"query-{ex}", "query", f)
    case(f"query-{ex}-json", "query", f, "--json", schema="query")
    case(f"lint-{ex}", "lint", f, "--all")
    case(f"lint-{ex}-json", "lint", f, "--all", "--json", schema="lint")
    case(f"check-{ex}", "check", f)
    case(f"check-{ex}-json", "check", f, "--format", "json", schema="check")

case("verify-webservers", "verify", f"{EX}/webservers.nsg", "--src", "203.0.113.7", "--dst", "web1",
     "--protocol", "tcp", "--dport", "443")
case("verify-webservers-json", "verify", f"{EX}/webservers.nsg", "--src", "203.0.113.7", "--dst", "web1",
     "--protocol", "tcp", "--dport", "443", "--json", schema="verify")
case("verify-three-tier", "verify", f"{EX}/three-tier.nsg", "--src", "web1", "--dst", "db1", "--protocol", "tcp",
     "--dport", "1433")
case("verify-three-tier-json", "verify", f"{EX}/three-tier.nsg", "--src", "web1", "--dst", "db1",
     "--protocol", "tcp", "--dport", "1433", "--json", schema="verify")
case("verify-flows", "verify", f"{EX}/webservers.nsg", "--flows", f"{EX}/webservers-flows.csv")
case("verify-flows-json", "verify", f"{EX}/webservers.nsg", "--flows", f"{EX}/webservers-flows.csv", "--json",
     schema="verify")
case("query-three-tier-exact", "query", f"{EX}/three-tier.nsg", "can any reach prod/db port 1433 tcp", "--exact")
case("query-three-tier-exact-json", "query", f"{EX}/three-tier.nsg", "can any reach prod/db port 1433 tcp",
     "--exact", "--json", schema="query")
case("query-webservers-question", "query", f"{EX}/webservers.nsg", "can Internet reach WebServers port 22")
case("lint-three-tier-rule", "lint", f"{EX}/three-tier.nsg", "--nsg", "web-nsg", "--rule", "Allow-App")
case("lint-three-tier-sarif", "lint", f"{EX}/three-tier.nsg", "--format", "sarif")
case("check-webservers-sarif", "check", f"{EX}/webservers.nsg", "--format", "sarif")
case("check-webservers-junit", "check", f"{EX}/webservers.nsg", "--format", "junit")
case("check-webservers-github", "check", f"{EX}/webservers.nsg", "--format", "github")
case("diff-webservers", "diff", f"{EX}/webservers.nsg", CHANGED)
case("diff-webservers-json", "diff", f"{EX}/webservers.nsg", CHANGED, "--json", schema="diff")
case("diff-webservers-selected", "diff", f"{EX}/webservers.nsg", CHANGED, "--from", "Internet", "--to", "web1")
case("replay-fabrikam", "replay", f"{EX}/replay/fabrikam.nsg", "--flow-logs", f"{EX}/replay/logs", "--against",
     f"{EX}/replay/fabrikam-https.nsg")
case("replay-fabrikam-json", "replay", f"{EX}/replay/fabrikam.nsg", "--flow-logs", f"{EX}/replay/logs", "--against",
     f"{EX}/replay/fabrikam-https.nsg", "--json", schema="replay")
case("replay-fabrikam-sarif", "replay", f"{EX}/replay/fabrikam.nsg", "--flow-logs", f"{EX}/replay/logs", "--against",
     f"{EX}/replay/fabrikam-https.nsg", "--format", "sarif")
case("replay-vnet-sample-json", "replay", f"{EX}/replay/myvnet.nsg", "--flow-logs",
     "{corpus}/flowlogs/msdocs-vnet-flow-logs-v4-sample.json", "--acl",
     "00000000-1234-abcd-ef00-c1c2c3c4c5c6=myVNet-nsg", "--json", schema="replay")
case("lint-fabrikam-flow-logs", "lint", f"{EX}/replay/fabrikam.nsg", "--flow-logs", f"{EX}/replay/logs")
case("tags-show-builtin", "tags", "show", "AzureLoadBalancer")
case("tags-show-context", "tags", "show", "VirtualNetwork")

# Real templates from the shared corpus (../shared/corpus/arm): import, show and lint them as users would.
for name in ("application-security-group", "dmz-nsg", "iis-2vm-sql-1vm"):
    f = f"{{corpus}}/arm/{name}.json"
    case(f"corpus-import-{name}", "import", f)
    case(f"corpus-show-{name}-json", "show", f, "--json", schema="show")
    case(f"corpus-lint-{name}", "lint", f)
    case(f"corpus-lint-{name}-json", "lint", f, "--json", schema="lint")

# Bicep read directly (docs/import.md "Bicep"): a corpus project with a resource loop and child resources, and
# one whose NSGs are in local modules.
for name in ("fw-docs-qs", "private-aks-cluster"):
    case(f"corpus-import-bicep-{name}", "import", f"{{corpus}}/bicep/{name}/main.bicep")

# What users see when something is wrong: a failing contract (exit 1), invalid input (exit 2).
case("check-changed-fails", "check", CHANGED)
case("check-changed-fails-json", "check", CHANGED, "--format", "json", schema="check")
case("query-unknown-name", "query", f"{EX}/webservers.nsg", "can Internet reach Nope port 22")
case("diff-unknown-endpoint", "diff", f"{EX}/webservers.nsg", CHANGED, "--to", "Internte")

# The report's matrix alone (the whole HTML page is checked in a browser by tests/test_report_browser.py).
case("report-webservers-matrix-svg", "report", f"{EX}/webservers.nsg", "--matrix-format", "svg")
case("report-three-tier-matrix-svg", "report", f"{EX}/three-tier.nsg", "--matrix-format", "svg")

# Security admin rules (AVNM) and the trace's "evaluated" marks: Microsoft's worked example (Internet to VM1
# port 80, NSG1 on the subnet denies, NSG2 on the NIC is not evaluated) and an AlwaysAllow past an NSG.
AVNM = f"{EX}/avnm.nsg"
case("show-avnm-json", "show", AVNM, "--json", schema="show")
case("lint-avnm", "lint", AVNM)
case("lint-avnm-admin", "lint", "tests/golden/inputs/avnm-lint.nsg")
case("lint-avnm-admin-json", "lint", "tests/golden/inputs/avnm-lint.nsg", "--json", schema="lint")
case("verify-avnm-worked-example", "verify", AVNM, "--src", "198.51.100.1", "--dst", "vm1", "--protocol", "tcp",
     "--dport", "80")
case("verify-avnm-always-allow-json", "verify", AVNM, "--src", "10.9.0.7", "--dst", "app1", "--protocol", "tcp",
     "--dport", "443", "--json", schema="verify")

# The built-in baseline (docs/baseline.md): every format of check, waivers (one active, one expired), and
# real templates that declare NSGs and subnets but no NIC (they gave E802 to a query before).
BASE = "tests/golden/inputs/baseline.nsg"
WAIVERS = "tests/golden/inputs/baseline-waivers.toml"
case("check-baseline-all", "check", BASE, "--baseline", "all")
case("check-baseline-cis-waivers", "check", BASE, "--baseline", "cis", "--waivers", WAIVERS)
case("check-baseline-cis-json", "check", BASE, "--baseline", "cis", "--waivers", WAIVERS, "--format", "json",
     schema="check")
case("check-baseline-cis-sarif", "check", BASE, "--baseline", "cis", "--format", "sarif")
case("check-baseline-cis-junit", "check", BASE, "--baseline", "cis", "--format", "junit")
case("check-baseline-cis-github", "check", BASE, "--baseline", "cis", "--format", "github")
case("check-baseline-webservers-contracts", "check", f"{EX}/webservers.nsg", "--baseline", "cis")
for name in ("security-group-create", "vmss-win-iis-app-ssl", "darktrace-vsensor-standalone"):
    case(f"corpus-check-baseline-{name}", "check", f"{{corpus}}/arm/{name}.json", "--baseline", "all")
case("corpus-check-baseline-vmss-json", "check", "{corpus}/arm/vmss-win-iis-app-ssl.json", "--baseline", "cis",
     "--format", "json", schema="check")
case("check-baseline-open-values", "check", "tests/golden/inputs/baseline-open-values.json", "--baseline", "cis")
