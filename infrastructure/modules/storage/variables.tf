variable "name" {
  type        = string
  description = "Prefix of every name in this environment, e.g. ascep-dev."
}

variable "kms_key_arn" {
  type        = string
  description = "Key of the lake's and the artifacts' SSE-KMS encryption, and of Athena's results."
}

variable "lake_prefix" {
  type        = string
  description = "Folder of the lake in its bucket: ASCEP_LAKE is s3://<bucket>/<lake_prefix>."
  default     = "lake"
}

variable "infrequent_access_days" {
  type        = number
  description = "Days after which the lake's Parquet objects (of 128 KiB or more) move to STANDARD_IA."
  default     = 30
}

variable "glacier_ir_days" {
  type        = number
  description = "Days after which they move to GLACIER_IR, which Athena and `ascep analytics` still read at once."
  default     = 180
}

variable "lake_expiration_days" {
  type        = number
  description = "Days after which the lake's objects are deleted; null keeps them."
  default     = null
}

variable "lake_noncurrent_days" {
  type        = number
  description = "Days a replaced or deleted lake object's old version is kept. Every flush rewrites the open offset range (docs/lake.md), so versions pile up quickly: keep this short."
  default     = 3
}

variable "artifact_noncurrent_days" {
  type        = number
  description = "Days an older version of an application zip is kept, the window for a rollback to it."
  default     = 90
}

variable "access_log_days" {
  type        = number
  description = "Days the S3 and ALB access logs are kept."
  default     = 90
}

variable "venues" {
  type        = list(string)
  description = "Values of the ticks table's venue partition (Athena's partition projection knows only these)."
}

variable "first_day" {
  type        = string
  description = "Oldest dt partition Athena projects, YYYY-MM-DD."
  default     = "2025-01-01"
}
