"""Where the shared corpus of real Azure files is, and what each ARM template needs to import.

The corpus lives beside the repository (../shared/corpus, as laid out for developers and CI), or where
the environment variable NSGSOLVE_SHARED points (its corpus/ folder); it is never copied into the
repository. Tests that read it skip with a message saying where they looked.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _checkout_root(root: Path) -> Path | None:
    """The main checkout of the repository when ``root`` is a git worktree (its ``.git`` is a file naming
    the real git directory), so a worktree finds the shared data beside the repository it belongs to."""
    marker = root / ".git"
    if not marker.is_file():
        return None
    text = marker.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = (root / text.partition(":")[2].strip()).resolve()
    common = gitdir / "commondir"
    if common.is_file():
        gitdir = (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
    return gitdir.parent


def shared_candidates() -> list[Path]:
    """Where the shared data may be: $NSGSOLVE_SHARED, else ../shared beside the repository (or beside the
    main checkout, for a git worktree). Never a machine's absolute path."""
    env = os.environ.get("NSGSOLVE_SHARED")
    if env:
        return [Path(env)]
    out = [ROOT.parent / "shared"]
    main = _checkout_root(ROOT)
    if main is not None and main.parent / "shared" not in out:
        out.append(main.parent / "shared")
    return out


SHARED = next((c for c in shared_candidates() if c.is_dir()), None)
CANDIDATES = [c / "corpus" for c in shared_candidates()]
CORPUS = next((c for c in CANDIDATES if c.is_dir()), None)

# Codes a corpus file may stop with, each a precise, documented reason (docs/import.md "Error codes").
ALLOWED_CODES = {"E610", "E640"}

# file -> (code an import under --strict stops with, parameters that make it import, symbolic needed);
# without --strict every one of them imports with W601-W603 warnings saying what was assumed
NEEDS: dict[str, tuple[str, dict[str, str], bool]] = {
    "ase-azfirewall-vnet-nested.json": ("E610", {
        "vnetResourceName": "ase-vnet", "vnetAddressRange": "10.0.0.0/16", "aseSubnetName": "ase",
        "aseSubnetAddressRange": "10.0.1.0/24", "aseNSGName": "ase-nsg",
        "azureFirewallSubnetAddressRange": "10.0.2.0/24"}, False),
    "azure-bastion-nsg.json": ("E610", {"bastionHostName": "bastion"}, False),
    "batch-pool-no-public-ip.json": ("E610", {"vnetName": "batch-vnet"}, False),
    "bosh-setup.json": ("E610", {"vmName": "bosh"}, False),
    "chef-automate-ha-nsg-nested.json": ("E610", {"networkSettings": '{"feNsg": "fe-nsg", "beNsg": "be-nsg", '
                                                  '"beSubnetPrefix": "10.0.1.0/24", "location": "westus", '
                                                  '"networkApiVersion": "2020-06-01"}'}, False),
    "concourse-ci.json": ("E610", {"jumpboxVmName": "jumpbox"}, False),
    "darktrace-vsensor-autoscaling.json": ("E610", {"existingVirtualNetworkName": "vnet",
                                                    "MgmtSourceAddressOrRange": "203.0.113.0/24"}, False),
    "darktrace-vsensor-standalone.json": ("E610", {
        "networkSecurityGroupName": "vsensor-nsg", "vsensorName": "vsensor",
        "MgmtSourceAddressOrRange": "203.0.113.0/24", "virtualNetworkResourceGroupName": "rg",
        "virtualNetworkName": "vnet", "subnet1Name": "sensors"}, False),
    "eshop-ilb-ase-prereq.json": ("E610", {"name": "eshop"}, False),
    "github-enterprise.json": ("E610", {"accountPrefix": "ghe"}, False),
    "hdinsight-secure-vnet.json": ("E610", {"clusterName": "hdi"}, False),
    # Its rules name regional tags (Storage.<location>): the region is a parameter defaulting to the
    # resource group's, unknown offline (E628 without it).
    "machine-learning-end-to-end-secure.json": ("E610", {"prefix": "ml", "location": "eastus"}, False),
    "sas-viya-2021.json": ("E610", {"WebIngressLocation": "203.0.113.0/24", "AdminIngressLocation": "198.51.100.0/24"},
                           False),
    "sqlmi-managed-instance-vnet-nested.json": ("E610", {
        "vnetResourceName": "mi-vnet", "vnetAddressRange": "10.0.0.0/16", "managedInstanceSubnetName": "mi",
        "managedInstanceSubnetAddressRange": "10.0.0.0/24", "managedInstanceNSGName": "mi-nsg"}, False),
    "sqlmi-new-vnet-w-jumpbox.json": ("E610", {"managedInstanceName": "mi"}, False),
    # Its rules' prefixes are reference() of an existing subnet: known only in Azure, so --symbolic.
    "vnet-nsg-for-redis.json": ("E610", {"newNsgName": "redis-nsg", "existingVirtualNetworkName": "vnet",
                                         "existingSubnetName": "redis"}, True),
}
