resource "azurerm_resource_group" "rg" {
  name     = "rg-avnm"
  location = "westeurope"
}

data "azurerm_subscription" "current" {}

resource "azurerm_virtual_network" "hub" {
  name                = "hub"
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name
  address_space       = ["10.0.0.0/16"]
}

resource "azurerm_subnet" "web" {
  name                 = "web"
  resource_group_name  = azurerm_resource_group.rg.name
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.1.0/24"]
}

resource "azurerm_network_security_group" "nsg1" {
  name                = "NSG1"
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name
}

resource "azurerm_subnet_network_security_group_association" "web" {
  subnet_id                 = azurerm_subnet.web.id
  network_security_group_id = azurerm_network_security_group.nsg1.id
}

resource "azurerm_network_security_group" "nsg2" {
  name                = "NSG2"
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name

  security_rule {
    name                       = "Allow-Http"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "80"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "Deny-Monitoring"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "10.9.0.0/24"
    destination_address_prefix = "*"
  }
}

resource "azurerm_network_interface" "vm1" {
  name                = "vm1"
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name
  ip_configuration {
    name                          = "ipconfig1"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.0.1.4"
  }
}

resource "azurerm_network_interface_security_group_association" "vm1" {
  network_interface_id      = azurerm_network_interface.vm1.id
  network_security_group_id = azurerm_network_security_group.nsg2.id
}

resource "azurerm_network_manager" "nm" {
  name                = "nm"
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name
  scope {
    subscription_ids = [data.azurerm_subscription.current.id]
  }
  scope_accesses = ["SecurityAdmin"]
}

resource "azurerm_network_manager_network_group" "prod" {
  name               = "prod"
  network_manager_id = azurerm_network_manager.nm.id
}

resource "azurerm_network_manager_static_member" "hub" {
  name                      = "hub"
  network_group_id          = azurerm_network_manager_network_group.prod.id
  target_virtual_network_id = azurerm_virtual_network.hub.id
}

resource "azurerm_network_manager_security_admin_configuration" "guard" {
  name               = "Guardrails"
  network_manager_id = azurerm_network_manager.nm.id
}

resource "azurerm_network_manager_security_admin_configuration" "draft" {
  name               = "Draft"
  network_manager_id = azurerm_network_manager.nm.id
}

resource "azurerm_network_manager_admin_rule_collection" "high" {
  name                            = "HighRisk"
  security_admin_configuration_id = azurerm_network_manager_security_admin_configuration.guard.id
  network_group_ids               = [azurerm_network_manager_network_group.prod.id]
}

resource "azurerm_network_manager_admin_rule_collection" "draft" {
  name                            = "DraftRules"
  security_admin_configuration_id = azurerm_network_manager_security_admin_configuration.draft.id
  network_group_ids               = [azurerm_network_manager_network_group.prod.id]
}

resource "azurerm_network_manager_admin_rule" "deny_ssh" {
  name                     = "Deny-SSH-RDP"
  admin_rule_collection_id = azurerm_network_manager_admin_rule_collection.high.id
  action                   = "Deny"
  direction                = "Inbound"
  priority                 = 10
  protocol                 = "Tcp"
  destination_port_ranges  = ["22", "3389"]
  source {
    address_prefix_type = "ServiceTag"
    address_prefix      = "Internet"
  }
}

resource "azurerm_network_manager_admin_rule" "monitoring" {
  name                     = "Monitoring"
  admin_rule_collection_id = azurerm_network_manager_admin_rule_collection.high.id
  action                   = "AlwaysAllow"
  direction                = "Inbound"
  priority                 = 20
  protocol                 = "Tcp"
  source_port_ranges       = ["0-65535"]
  destination_port_ranges  = ["443"]
  description              = "central monitoring"
  source {
    address_prefix_type = "IPPrefix"
    address_prefix      = "10.9.0.0/24"
  }
  source {
    address_prefix_type = "ServiceTag"
    address_prefix      = "AzureLoadBalancer"
  }
  destination {
    address_prefix_type = "IPPrefix"
    address_prefix      = "*"
  }
}

resource "azurerm_network_manager_admin_rule" "draft_deny_all" {
  name                     = "Deny-Everything"
  admin_rule_collection_id = azurerm_network_manager_admin_rule_collection.draft.id
  action                   = "Deny"
  direction                = "Inbound"
  priority                 = 1
  protocol                 = "Any"
}

resource "azurerm_network_manager_deployment" "guard" {
  network_manager_id = azurerm_network_manager.nm.id
  location           = "westeurope"
  scope_access       = "SecurityAdmin"
  configuration_ids  = [azurerm_network_manager_security_admin_configuration.guard.id]
}
