variable "name" {
  type        = string
  description = "Prefix of every name in this environment, e.g. ascep-dev."
}

variable "region" {
  type        = string
  description = "AWS region (the awslogs driver's and the tasks' AWS_REGION)."
}

variable "image_tag" {
  type        = string
  description = "Tag of the product image in the ECR repository (tags are immutable: one per build)."
}

variable "connectors" {
  type        = list(string)
  description = "Live connectors, by venue name as `ascep ingest` takes it: one ECS service each, running `ascep ingest <venue>`."
}

variable "dashboard_count" {
  type        = number
  description = "Dashboard tasks behind the ALB."
  default     = 1
}

variable "dashboard_port" {
  type        = number
  description = "Port the dashboard listens on (ASCEP_DASHBOARD__PORT)."
}

variable "dashboard_settings" {
  type        = map(string)
  description = "ASCEP settings of the dashboard tasks, by environment variable name."
}

variable "connector_settings" {
  type        = map(string)
  description = "ASCEP settings of the connector tasks and the rules task, by environment variable name."
}

variable "redis_url_secret_arn" {
  type        = string
  description = "Secret with the rediss:// URL, which every task gets as ASCEP_REDIS."
}

variable "database_url_secret_arn" {
  type        = string
  description = "Secret with the postgres:// URL of the dashboard's database, which the dashboard and the one-off tasks (`ascep users`) get as ASCEP_DASHBOARD__DATABASE_URL."
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the dashboard's HTTPS listener."
}

variable "vpc_id" {
  type        = string
  description = "The VPC of the target group."
}

variable "public_subnet_ids" {
  type        = list(string)
  description = "Subnets of the internet-facing ALB."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Subnets of the tasks, which get no public address."
}

variable "security_group_ids" {
  type        = map(string)
  description = "Security groups by part; this module uses alb, dashboard and connectors."
}

variable "kms_key_arn" {
  type        = string
  description = "Key of ECR, the secret and the lake's SSE-KMS encryption."
}

variable "log_group_names" {
  type        = map(string)
  description = "Log groups by key: ecs-<task> for the dashboard, each connector and rules, and waf."
}

variable "log_group_arns" {
  type        = map(string)
  description = "The same log groups' ARNs."
}

variable "logs_bucket" {
  type        = string
  description = "Bucket of the ALB's access logs (under alb/)."
}

variable "lake_read_policy_arn" {
  type        = string
  description = "The storage module's read policy of the lake, for the dashboard's analytics."
}

variable "msk_cluster_arn" {
  type        = string
  description = "The MSK cluster the connectors write to."
}

variable "msk_topic_arn_prefix" {
  type        = string
  description = "ARN prefix of the cluster's topics (<prefix>/<topic>)."
}

variable "msk_group_arn_prefix" {
  type        = string
  description = "ARN prefix of the cluster's consumer groups (`ascep rules list` reads as ascep-rules-cli)."
}

variable "deletion_protection" {
  type        = bool
  description = "Whether the ALB refuses deletion (prod)."
  default     = false
}
