variable "name" {
  type        = string
  description = "Replication group id, e.g. ascep-dev."
}

variable "node_type" {
  type        = string
  description = "Cache node type, e.g. cache.t4g.micro (dev) or cache.m7g.large (prod)."
}

variable "replicas" {
  type        = number
  description = "Read replicas beside the primary; with one or more the group fails over on its own, across zones."
  default     = 0
}

variable "engine_version" {
  type        = string
  description = "Redis OSS engine version."
  default     = "7.1"
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets of the cache nodes."
}

variable "security_group_id" {
  type        = string
  description = "Security group of the nodes (lets in 6379 from the product's parts)."
}

variable "kms_key_arn" {
  type        = string
  description = "Key that encrypts the data at rest and the auth-token secret."
}

variable "log_group_name" {
  type        = string
  description = "CloudWatch log group of the slow log."
}

variable "snapshot_retention_days" {
  type        = number
  description = "Daily snapshots kept (the dashboard's recent signals, the rules in force)."
  default     = 3
}
