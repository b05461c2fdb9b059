"""Every corpus file through import: it imports, or stops for the documented reason (docs/import.md).

EXPECTED is the per-file table of docs/import.md. A file that needs parameter values is also imported with the
values listed, so the table proves the template imports once the user supplies them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nsgsolve.errors import InputError
from nsgsolve.loader import load_policy

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [Path("/work/shared/corpus"), ROOT.parent / "shared" / "corpus"]
CORPUS = next((c for c in CANDIDATES if c.is_dir()), None)

# Codes a corpus file may stop with, each a precise, documented reason (docs/import.md "Error codes").
ALLOWED_CODES = {"E610", "E640"}

# file -> (code the default import stops with, parameters that make it import, symbolic needed)
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
    "machine-learning-end-to-end-secure.json": ("E610", {"prefix": "ml"}, False),
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
NOT_A_POLICY = {  # Azure's evaluated views of one NIC (E640); 'nsgsolve tags compare' reads the first three
    "docs-az-network-nic-list-effective-nsg-DenyAllInBound.json",
    "docs-az-network-nic-list-effective-nsg-DenyAllOutBound.json",
    "restspec-2022-07-01-NetworkInterfaceEffectiveNSGList.json",
    "restspec-2022-07-01-NetworkWatcherSecurityGroupViewGet.json",
}


def corpus_files() -> list[Path]:
    if CORPUS is None:
        return []
    return sorted((CORPUS / "arm").glob("*.json")) + sorted((CORPUS / "az-cli").glob("*.json"))


def _skip_without_corpus() -> None:
    if CORPUS is None:
        pytest.skip(f"no corpus: looked in {', '.join(str(c) for c in CANDIDATES)}")


@pytest.mark.parametrize("path", corpus_files() or [None], ids=lambda p: p.name if p else "no-corpus")
def test_corpus_file_imports_or_stops_for_the_documented_reason(path):
    _skip_without_corpus()
    name = path.name
    expected = NEEDS.get(name)
    if name in NOT_A_POLICY:
        expected = ("E640", {}, False)
    if expected is None:
        policy = load_policy(path)
        assert policy.nsgs, f"{name}: imported without any NSG"
        return
    code, params, symbolic = expected
    with pytest.raises(InputError) as e:
        load_policy(path)
    codes = {d.code for d in e.value.diagnostics}
    assert codes == {code} and codes <= ALLOWED_CODES
    for d in e.value.diagnostics:
        assert d.span.file == str(path) and d.span.line > 0, "every diagnostic points into the file"
    if code == "E610":
        policy = load_policy(path, params=params, symbolic=symbolic)
        assert policy.nsgs and sum(len(n.rules) for n in policy.nsgs) > 0


def test_corpus_figures_match_docs():
    """The figures written in docs/import.md are the ones this suite measures."""
    _skip_without_corpus()
    arm = sorted((CORPUS / "arm").glob("*.json"))
    complete = [p for p in arm if p.name not in NEEDS]
    doc = (ROOT / "docs" / "import.md").read_text()
    assert f"**{len(complete)} of {len(arm)}** ARM templates import completely" in doc
    assert f"{len(complete) + sum(1 for v in NEEDS.values() if not v[2])} with `--param`" in doc
