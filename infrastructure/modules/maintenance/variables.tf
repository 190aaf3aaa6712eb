variable "name" {
  type        = string
  description = "Name of the function, e.g. ascep-dev-maintenance."
}

variable "package_path" {
  type        = string
  description = "Local zip of infrastructure/lambda/maintenance/ (README, \"The maintenance Lambda\"); uploaded to the artifacts bucket."
}

variable "artifacts_bucket" {
  type        = string
  description = "Bucket the package is uploaded to."
}

variable "runtime" {
  type        = string
  description = "Lambda runtime of the handler."
  default     = "python3.12"
}

variable "layers" {
  type        = list(string)
  description = "Layer ARNs, e.g. AWS SDK for pandas for pyarrow, if the package does not bring it."
  default     = []
}

variable "every_minutes" {
  type        = number
  description = "Minutes between runs (EventBridge rate); the alarms on what it publishes take their periods from it."
  default     = 15
  validation {
    condition     = var.every_minutes >= 1 && floor(var.every_minutes) == var.every_minutes
    error_message = "every_minutes must be a whole number of minutes, at least 1."
  }
}

variable "timeout_s" {
  type        = number
  description = "Longest run, in seconds (compaction of a busy hour takes the longest)."
  default     = 900
}

variable "memory_mb" {
  type        = number
  description = "Memory of a run; CPU grows with it."
  default     = 1024
}

variable "environment" {
  type        = map(string)
  description = "Environment of the handler: ASCEP settings by their variable names, and what the handler needs besides."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets (it reaches ElastiCache)."
}

variable "redis_url_secret_arn" {
  type        = string
  description = "Secrets Manager secret whose value is the ElastiCache rediss:// URL with the token (the elasticache module's url_secret_arn), encrypted with kms_key_arn: the lag action reads it."
}

variable "security_group_id" {
  type        = string
  description = "Security group of the function."
}

variable "kms_key_arn" {
  type        = string
  description = "Key of the environment variables, the dead-letter queue, the lake's SSE-KMS and the Redis URL's secret."
}

variable "log_group_name" {
  type        = string
  description = "CloudWatch log group of the function."
}

variable "log_group_arn" {
  type        = string
  description = "Its ARN."
}

variable "lake_write_policy_arn" {
  type        = string
  description = "The storage module's write policy of the lake, which compaction needs."
}

variable "flink_application_arn" {
  type        = string
  description = "The Managed Flink application it restarts from its latest snapshot when it has failed."
}

variable "metric_namespace" {
  type        = string
  description = "The only CloudWatch namespace it may publish to (the freshness and lag metrics)."
}
