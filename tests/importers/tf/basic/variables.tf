variable "prefix" {
  type    = string
  default = "app"
}

variable "address_space" {
  type    = list(string)
  default = ["10.10.0.0/16"]
}

variable "admin_cidr" {
  type = string
}

variable "web_ports" {
  type    = list(string)
  default = ["80", "443"]
}
