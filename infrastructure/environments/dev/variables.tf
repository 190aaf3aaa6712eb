# What an operator sets per environment (terraform.tfvars; see terraform.tfvars.example). environments/prod
# links this file (and outputs.tf): dev and prod take the same inputs and differ in the sizes of main.tf.

variable "region" {
  type        = string
  description = "AWS region of the environment."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate (same region) of the dashboard's HTTPS listener."
}

variable "dashboard_ingress_cidrs" {
  type        = list(string)
  description = "Who may reach the dashboard, e.g. the office's or the VPN's ranges."
}

variable "alarm_emails" {
  type        = list(string)
  description = "Addresses the alarms notify."
  default     = []
}

variable "image_tag" {
  type        = string
  description = "Tag of the product image pushed to the ECR repository (output repository_url)."
}

variable "application_key" {
  type        = string
  description = "Key of the job's zip in the artifacts bucket, e.g. flink/ascep-job-<version>.zip; a new key rolls the job out."
}

variable "application_object_version" {
  type        = string
  description = "S3 version id of the zip, to pin one; null: the current one."
  default     = null
}

variable "restore_type" {
  type        = string
  description = "How the job starts after an update: RESTORE_FROM_LATEST_SNAPSHOT, or RESTORE_FROM_CUSTOM_SNAPSHOT to roll back."
  default     = "RESTORE_FROM_LATEST_SNAPSHOT"
}

variable "snapshot_name" {
  type        = string
  description = "Snapshot of a rollback (with RESTORE_FROM_CUSTOM_SNAPSHOT)."
  default     = null
}

variable "allow_non_restored_state" {
  type        = bool
  description = "Let the job start from a snapshot with state that no operator of the new version takes."
  default     = false
}

variable "start_job" {
  type        = bool
  description = "Whether the Flink application runs (false stops it, taking a snapshot)."
  default     = true
}

variable "maintenance_package" {
  type        = string
  description = "Local zip of infrastructure/lambda/maintenance/ (README, \"The maintenance Lambda\")."
  default     = "../../../build/lambda/maintenance.zip"
}

variable "maintenance_layers" {
  type        = list(string)
  description = "Layers of the maintenance Lambda, e.g. the AWS SDK for pandas layer for pyarrow."
  default     = []
}

variable "settings" {
  type        = map(string)
  description = "Further ASCEP settings of every part, by environment variable name (docs/configuration.md)."
  default     = {}
}
