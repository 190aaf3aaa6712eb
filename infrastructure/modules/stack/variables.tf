variable "name" {
  type        = string
  description = "Prefix of every name, e.g. ascep-dev; lowercase letters, digits and hyphens."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name))
    error_message = "name must be 3-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "AWS region of the environment."
}

# -- what an operator sets (environments/*/terraform.tfvars) ------------------------------------------

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the dashboard's HTTPS listener, in the same region."
}

variable "dashboard_ingress_cidrs" {
  type        = list(string)
  description = "Who may reach the dashboard."
}

variable "alarm_emails" {
  type        = list(string)
  description = "Addresses the alarms notify."
}

variable "image_tag" {
  type        = string
  description = "Tag of the product image in ECR, for the dashboard and the connectors."
}

variable "application_key" {
  type        = string
  description = "Key of the job's application zip in the artifacts bucket."
}

variable "application_object_version" {
  type        = string
  description = "S3 version id of the zip; null: the current one."
}

variable "restore_type" {
  type        = string
  description = "How the job starts after an update (RESTORE_FROM_LATEST_SNAPSHOT unless rolling back)."
}

variable "snapshot_name" {
  type        = string
  description = "Snapshot to restore with RESTORE_FROM_CUSTOM_SNAPSHOT."
}

variable "allow_non_restored_state" {
  type        = bool
  description = "Whether the job may start from a snapshot with state that no operator takes."
}

variable "start_job" {
  type        = bool
  description = "Whether the Flink application runs."
}

variable "maintenance_package" {
  type        = string
  description = "Local zip of the maintenance Lambda."
}

variable "maintenance_layers" {
  type        = list(string)
  description = "Layers of the maintenance Lambda (e.g. AWS SDK for pandas, for pyarrow)."
}

variable "settings" {
  type        = map(string)
  description = "Further ASCEP settings for the job, the dashboard and the connectors, by environment variable name (e.g. ASCEP_ARBITRAGE__MIN_PROFIT_BPS)."
  default     = {}
}

# -- sizes (fixed per environment in environments/*/main.tf) --------------------------------------------

variable "az_count" {
  type        = number
  description = "Availability zones."
}

variable "nat_gateways" {
  type        = number
  description = "NAT gateways."
}

variable "interface_endpoints" {
  type        = bool
  description = "Whether ECR, CloudWatch, Secrets Manager and STS get interface endpoints."
}

variable "connectors" {
  type        = list(string)
  description = "Live connectors to run, by venue name (ingestion/venues)."
}

variable "partitions" {
  type        = number
  description = "Partitions of ticks, trades and signals (ASCEP_JOB__PARTITIONS)."
}

variable "msk_broker_count" {
  type        = number
  description = "MSK brokers."
}

variable "msk_instance_type" {
  type        = string
  description = "MSK broker instance type."
}

variable "msk_volume_gb" {
  type        = number
  description = "EBS storage per broker, GB."
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type."
}

variable "redis_replicas" {
  type        = number
  description = "ElastiCache replicas beside the primary."
}

variable "flink_parallelism" {
  type        = number
  description = "Parallelism of the job."
}

variable "flink_parallelism_per_kpu" {
  type        = number
  description = "Parallel tasks per KPU."
}

variable "database_instance_class" {
  type        = string
  description = "RDS instance class of the dashboard's PostgreSQL (accounts, tokens, sessions)."
}

variable "database_multi_az" {
  type        = bool
  description = "A standby of the dashboard's PostgreSQL in another zone."
}

variable "database_backup_retention_days" {
  type        = number
  description = "Days of automated backups of the dashboard's PostgreSQL."
}

variable "dashboard_count" {
  type        = number
  description = "Dashboard tasks."
}

variable "deletion_protection" {
  type        = bool
  description = "Whether the ALB refuses deletion."
}

variable "log_retention_days" {
  type        = number
  description = "Days the log groups keep events."
}
