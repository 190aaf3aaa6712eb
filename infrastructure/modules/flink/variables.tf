variable "name" {
  type        = string
  description = "Name of the Managed Flink application, e.g. ascep-dev."
}

variable "runtime_environment" {
  type        = string
  description = "Managed Flink runtime. The job is built for the PyFlink of pyproject.toml (apache-flink==2.3.*): change the two together."
  default     = "FLINK-2_3"
  validation {
    condition     = can(regex("^FLINK-2_[0-9]+$", var.runtime_environment))
    error_message = "runtime_environment must be a Flink 2 runtime (FLINK-2_3 for the job as built)."
  }
}

variable "artifacts_bucket_arn" {
  type        = string
  description = "Bucket that holds the application zip."
}

variable "application_key" {
  type        = string
  description = "Key of the zip `ascep deploy package` built, e.g. flink/ascep-job-<version>.zip. A new key rolls the job out from its latest snapshot."
}

variable "application_object_version" {
  type        = string
  description = "S3 version id of the zip; null takes the current one."
  default     = null
}

variable "py_files" {
  type        = string
  description = "pyFiles of the run options: the dependencies' folder in the zip (the project's packages are at its root, beside ascep_job.py)."
  default     = "lib/"
}

variable "settings" {
  type        = map(string)
  description = "ASCEP settings of the job, by environment variable name (ASCEP_KAFKA, ASCEP_JOB__PARTITIONS, ...): the property group `ascep`."
  validation {
    condition     = alltrue([for key in keys(var.settings) : can(regex("^ASCEP_[A-Z0-9_]+$", key))])
    error_message = "Every key of settings must be an ASCEP_* environment variable name."
  }
}

variable "parallelism" {
  type        = number
  description = "Parallelism of the job (ASCEP_JOB__PARALLELISM is set to it)."
}

variable "parallelism_per_kpu" {
  type        = number
  description = "Parallel tasks per KPU (1 vCPU, 4 GB); KPUs = ceil(parallelism / this), plus one for the JobManager."
  default     = 1
}

variable "checkpoint_interval_ms" {
  type        = number
  description = "Checkpoint interval (ASCEP_JOB__CHECKPOINT_INTERVAL_MS is set to it)."
  default     = 10000
}

variable "min_pause_between_checkpoints_ms" {
  type        = number
  description = "Least time between the end of one checkpoint and the start of the next."
  default     = 5000
}

variable "restore_type" {
  type        = string
  description = "How the application starts after an update: RESTORE_FROM_LATEST_SNAPSHOT, RESTORE_FROM_CUSTOM_SNAPSHOT (with snapshot_name) or SKIP_RESTORE_FROM_SNAPSHOT."
  default     = "RESTORE_FROM_LATEST_SNAPSHOT"
  validation {
    condition     = contains(["RESTORE_FROM_LATEST_SNAPSHOT", "RESTORE_FROM_CUSTOM_SNAPSHOT", "SKIP_RESTORE_FROM_SNAPSHOT"], var.restore_type)
    error_message = "restore_type must be RESTORE_FROM_LATEST_SNAPSHOT, RESTORE_FROM_CUSTOM_SNAPSHOT or SKIP_RESTORE_FROM_SNAPSHOT."
  }
}

variable "snapshot_name" {
  type        = string
  description = "Snapshot to restore with RESTORE_FROM_CUSTOM_SNAPSHOT (a rollback)."
  default     = null
}

variable "allow_non_restored_state" {
  type        = bool
  description = "Start even when the snapshot holds state no operator of the new version takes (an operator removed)."
  default     = false
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets of the application's network interfaces."
}

variable "security_group_id" {
  type        = string
  description = "Security group of the application (reaches MSK, ElastiCache and S3)."
}

variable "log_group_arn" {
  type        = string
  description = "CloudWatch log group of the application."
}

variable "log_stream_arn" {
  type        = string
  description = "Log stream in it that the application writes to."
}

variable "kms_key_arn" {
  type        = string
  description = "Key of the buckets' SSE-KMS encryption."
}

variable "lake_write_policy_arn" {
  type        = string
  description = "The storage module's write policy of the lake, which the job's archivers need."
}

variable "msk_cluster_arn" {
  type        = string
  description = "The MSK cluster."
}

variable "msk_topic_arn_prefix" {
  type        = string
  description = "ARN prefix of the cluster's topics (<prefix>/<topic>)."
}

variable "msk_group_arn_prefix" {
  type        = string
  description = "ARN prefix of the cluster's consumer groups."
}

variable "topics_read" {
  type        = list(string)
  description = "Topics the job reads."
  default     = ["ticks", "trades", "rules", "signals"]
}

variable "topics_written" {
  type        = list(string)
  description = "Topics the job writes."
  default     = ["signals", "deadletter"]
}

variable "start" {
  type        = bool
  description = "Whether the application runs; false stops it (with a snapshot)."
  default     = true
}
