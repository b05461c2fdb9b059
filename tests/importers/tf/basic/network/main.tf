variable "name" {}
variable "address_space" {}
variable "subnets" {
  type = map(string)
}

resource "azurerm_virtual_network" "this" {
  name                = var.name
  address_space       = var.address_space
  location            = "westeurope"
  resource_group_name = "rg"
}

resource "azurerm_subnet" "this" {
  for_each             = var.subnets
  name                 = each.key
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [each.value]
}

output "subnet_ids" {
  value = { for k, s in azurerm_subnet.this : k => s.id }
}

output "subnet_prefixes" {
  value = { for k, s in azurerm_subnet.this : k => s.address_prefixes[0] }
}
