variable "name" {
  type        = string
  description = "Prefix of every name in this environment, e.g. ascep-dev."
}

variable "region" {
  type        = string
  description = "AWS region: the VPC endpoints' service names are built from it."
}

variable "cidr" {
  type        = string
  description = "The VPC's address range; a /16 leaves room for every subnet below."
  default     = "10.40.0.0/16"
}

variable "az_count" {
  type        = number
  description = "Availability zones to spread subnets over (MSK needs its broker count to be a multiple of it)."
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= length(var.zone_letters)
    error_message = "az_count must be at least 2 (the ALB and MSK need two zones) and at most the number of zone_letters."
  }
}

variable "zone_letters" {
  type        = list(string)
  description = "The zones, by their letter in the region (a fixed list: a zone AWS adds later does not move subnets)."
  default     = ["a", "b", "c"]
}

variable "nat_gateways" {
  type        = number
  description = "NAT gateways for the private subnets' internet egress (the connectors reach the venues through them): 1 is cheapest, az_count survives the loss of a zone."
  default     = 1
  validation {
    condition     = var.nat_gateways >= 1 && var.nat_gateways <= var.az_count
    error_message = "nat_gateways must be between 1 and az_count."
  }
}

variable "interface_endpoints" {
  type        = bool
  description = "Interface endpoints for ECR, CloudWatch Logs and metrics, Secrets Manager and STS, so that traffic to them stays off the NAT gateways (about 7.3 USD a month each per zone). S3 always has a free gateway endpoint."
  default     = true
}

variable "dashboard_ingress_cidrs" {
  type        = list(string)
  description = "Who may reach the dashboard's HTTPS listener."
}

variable "dashboard_port" {
  type        = number
  description = "Port the dashboard container listens on (ASCEP_DASHBOARD__PORT)."
}

variable "flow_log_group_arn" {
  type        = string
  description = "CloudWatch log group that receives the VPC flow logs."
}
