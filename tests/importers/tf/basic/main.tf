locals {
  tiers = {
    web = { index = 1, ports = var.web_ports }
    db  = { index = 2, ports = ["1433"] }
  }
  nsg_name = format("%s-%s", var.prefix, "nsg")
}

module "network" {
  source        = "./network"
  name          = "${var.prefix}-vnet"
  address_space = var.address_space
  subnets       = { for k, t in local.tiers : k => cidrsubnet(var.address_space[0], 8, t.index) }
}

resource "azurerm_network_security_group" "main" {
  name                = local.nsg_name
  location            = "westeurope"
  resource_group_name = "rg"

  security_rule {
    name                       = "allow-admin"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = var.admin_cidr
    destination_address_prefix = "VirtualNetwork"
  }

  dynamic "security_rule" {
    for_each = local.tiers
    iterator = tier
    content {
      name                         = "allow-${tier.key}"
      priority                     = 200 + tier.value.index * 10
      direction                    = "Inbound"
      access                       = "Allow"
      protocol                     = "Tcp"
      source_port_range            = "*"
      destination_port_ranges      = tier.value.ports
      source_address_prefix        = "Internet"
      destination_application_security_group_ids = [azurerm_application_security_group.tier[tier.key].id]
    }
  }
}

resource "azurerm_network_security_rule" "deny_all" {
  name                        = "deny-all-in"
  priority                    = 4000
  direction                   = "Inbound"
  access                      = "Deny"
  protocol                    = "*"
  source_port_range           = "*"
  destination_port_range      = "*"
  source_address_prefix       = "*"
  destination_address_prefix  = "*"
  resource_group_name         = "rg"
  network_security_group_name = azurerm_network_security_group.main.name
}

resource "azurerm_application_security_group" "tier" {
  for_each            = local.tiers
  name                = "${each.key}-asg"
  location            = "westeurope"
  resource_group_name = "rg"
}

resource "azurerm_subnet_network_security_group_association" "all" {
  for_each                  = module.network.subnet_ids
  subnet_id                 = each.value
  network_security_group_id = azurerm_network_security_group.main.id
}

resource "azurerm_network_interface" "vm" {
  count               = 2
  name                = "${var.prefix}-web-${count.index}"
  location            = "westeurope"
  resource_group_name = "rg"

  ip_configuration {
    name                          = "ipconfig1"
    subnet_id                     = module.network.subnet_ids["web"]
    private_ip_address_allocation = count.index == 0 ? "Static" : "Dynamic"
    private_ip_address            = count.index == 0 ? cidrhost(module.network.subnet_prefixes["web"], 10) : null
  }
}

resource "azurerm_network_interface_application_security_group_association" "vm" {
  count                         = length(azurerm_network_interface.vm)
  network_interface_id          = azurerm_network_interface.vm[count.index].id
  application_security_group_id = azurerm_application_security_group.tier["web"].id
}
