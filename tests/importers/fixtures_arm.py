"""Small builders for template fixtures (imported by the tests of this directory)."""

from __future__ import annotations

import json

from nsgsolve.importers import load_json_policy


def template(resources, parameters=None, variables=None, **extra) -> str:
    doc = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
           "contentVersion": "1.0.0.0", "parameters": parameters or {}, "variables": variables or {},
           "resources": resources, **extra}
    return json.dumps(doc, indent=2)


def load(text: str | dict, name: str = "azuredeploy.json", **kw):
    if isinstance(text, dict):
        texts = text
    else:
        texts = {name: text}
    return load_json_policy(texts, **kw)


def rule(name, priority, direction="Inbound", access="Allow", protocol="Tcp", src="*", dst="*", dport="80",
         sport="*", **more):
    props = {"protocol": protocol, "sourcePortRange": sport, "destinationPortRange": dport,
             "sourceAddressPrefix": src, "destinationAddressPrefix": dst, "access": access,
             "priority": priority, "direction": direction, **more}
    return {"name": name, "properties": props}


def nsg(name, rules, **props):
    return {"type": "Microsoft.Network/networkSecurityGroups", "apiVersion": "2023-04-01", "name": name,
            "location": "[resourceGroup().location]", "properties": {"securityRules": rules, **props}}
