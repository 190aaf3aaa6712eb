variable "name" {
  type        = string
  description = "Prefix of every name in this environment, e.g. ascep-dev."
}

variable "region" {
  type        = string
  description = "AWS region of the environment: CloudWatch Logs is granted the key there."
}

variable "deletion_window_days" {
  type        = number
  description = "Days a deleted key stays recoverable (7-30)."
  default     = 30
}
