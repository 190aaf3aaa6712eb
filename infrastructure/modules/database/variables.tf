variable "name" {
  type        = string
  description = "Identifier of the instance, e.g. ascep-dev-dashboard."
}

variable "instance_class" {
  type        = string
  description = "RDS instance class, e.g. db.t4g.micro (dev) or db.m7g.large (prod)."
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL major version (its parameter group family follows)."
  default     = "16"
}

variable "multi_az" {
  type        = bool
  description = "A standby in another zone that RDS fails over to."
  default     = false
}

variable "backup_retention_days" {
  type        = number
  description = "Days of automated backups (the accounts and tokens)."
  default     = 7
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the instance."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets of the instance."
}

variable "security_group_id" {
  type        = string
  description = "Security group of the instance (lets in 5432 from the dashboard's tasks)."
}

variable "kms_key_arn" {
  type        = string
  description = "Key of the storage, Performance Insights and the two secrets."
}

variable "log_group_name" {
  type        = string
  description = "The CloudWatch log group RDS exports the PostgreSQL log to (made by the monitoring module)."
}
