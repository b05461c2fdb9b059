"""Bicep (.bicep) files, mutated: tokens deleted, duplicated, swapped; hostile literals (priorities 99/4097,
ports '80-70', /33, 300.1.1.1); unterminated strings and '${'; brackets, parentheses, interpolation and
calls thousands deep; loops over range(0, 10^9); modules that are missing or registry modules; and random
bytes. Every command runs on each: the answer is an exit status with a located error, never a traceback."""

from __future__ import annotations

import re

from hypothesis import given, strategies as st

from fuzz_harness import ROOT, fuzz_settings, mutate_tokens, policy_commands, run_cli

SEED = """
@allowed([
  'prod'
  'test'
])
param env string = 'prod'
param ports array = [
  22
  443
]
param office string = '203.0.113.0/24'
param suffix string
var prefix = '10.0.1.0/24'
resource nsg 'Microsoft.Network/networkSecurityGroups@2023-04-01' = {
  name: '${env}-nsg'
  properties: {
    securityRules: [for (p, i) in ports: {
      name: 'allow-${p}'
      properties: {
        priority: 100 + i
        direction: 'Inbound'
        access: i == 0 ? 'Allow' : 'Deny'
        protocol: 'Tcp'
        sourceAddressPrefix: office
        sourcePortRange: '*'
        destinationAddressPrefix: cidrSubnet('10.0.0.0/16', 24, 1)
        destinationPortRange: string(p)
      }
    }]
  }
}
resource vnet 'Microsoft.Network/virtualNetworks@2023-04-01' = {
  name: 'v-${suffix}'
  properties: {
    addressSpace: { addressPrefixes: [ '10.0.0.0/16' ] }
    subnets: [
      {
        name: 's'
        properties: {
          addressPrefix: prefix
          networkSecurityGroup: { id: nsg.id }
        }
      }
    ]
  }
}
resource nic 'Microsoft.Network/networkInterfaces@2023-04-01' = [for i in range(0, 2): {
  name: 'web${i}'
  properties: {
    ipConfigurations: [
      {
        name: 'ipconfig1'
        properties: {
          privateIPAllocationMethod: 'Static'
          privateIPAddress: cidrHost(prefix, 3 + i)
          subnet: { id: vnet.properties.subnets[0].id }
        }
      }
    ]
  }
}]
output id string = nsg.id
"""

CORPUS_DIR = ROOT.parent / "shared" / "corpus" / "bicep"
SEEDS = {"seed.bicep": SEED}
if CORPUS_DIR.is_dir():
    SEEDS.update({p.parent.name: p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*/main.bicep"))[:3]
                  if "module " not in p.read_text(encoding="utf-8")})

_TOKEN = re.compile(r"\s+|'(?:[^'\\\n]|\\.)*'|[A-Za-z_]\w*|\d+|\$\{|.", re.S)
HOSTILE = ["'99'", "4097", "99", "'80-70'", "'65536'", "'0'", "'10.0.0.0/33'", "'300.1.1.1'", "'2001:db8::/32'",
           "9" * 5000, "1000000000", "'", "'''", "${", "'${" * 2000, "[" * 5000, "(" * 5000, "{" * 5000,
           "concat(" * 3000, "!" * 3000, "-" * 3000, "a." * 3000, "\x00", "\ufeff", "null", "true", "[]", "{}", "-1",
           "'*'", "'Internet'", "range(0, 1000000000)", "[for x in range(0, 1000000000): x]", "[for x in 'a': x]",
           "module m './nowhere.bicep' = {\n  name: 'm'\n}\n", "module r 'br:x.azurecr.io/m:1' = {\n  name: 'r'\n}\n",
           "module t 'ts:sub/rg/spec:1' = {\n  name: 't'\n}\n", "module self './main.bicep' = {\n  name: 's'\n}\n",
           "@", "::", "?", "??", "=>", "x => x", "existing", "parent: nsg", "nope", "frobnicate()",
           "resource x 'securityRules' = {\n name: 'r'\n}\n"]


def mutate(data, text: str) -> str:
    return mutate_tokens(data, text, _TOKEN, HOSTILE)


@fuzz_settings(15)
@given(data=st.data())
def test_bicep_files(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bicep")
    seed = data.draw(st.sampled_from(sorted(SEEDS)), label="seed")
    path = tmp / "main.bicep"
    path.write_text(mutate(data, SEEDS[seed]), encoding="utf-8", errors="surrogatepass")
    for argv in policy_commands(str(path), tmp):
        run_cli("bicep", argv)


@fuzz_settings(10)
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_bicep(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bicep-bytes")
    for name in ("main.bicep", "main.bicepparam"):
        path = tmp / name
        path.write_bytes(data)
        run_cli("bicep", ["show", str(path)])
