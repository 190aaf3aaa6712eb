variable "name" {
  type        = string
  description = "Name of the MSK cluster, e.g. ascep-dev."
}

variable "kafka_version" {
  type        = string
  description = "Apache Kafka version of the brokers."
  default     = "3.9.x"
}

variable "broker_count" {
  type        = number
  description = "Brokers, a multiple of the number of subnets (one per zone)."
}

variable "instance_type" {
  type        = string
  description = "Broker instance type, e.g. kafka.t3.small (dev) or kafka.m7g.large (prod)."
}

variable "volume_gb" {
  type        = number
  description = "EBS storage of each broker, in GB."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets, one per availability zone."
}

variable "security_group_id" {
  type        = string
  description = "Security group of the brokers (lets in 9098 from the clients)."
}

variable "kms_key_arn" {
  type        = string
  description = "Key that encrypts the brokers' storage."
}

variable "log_group_name" {
  type        = string
  description = "CloudWatch log group of the broker logs."
}

variable "partitions" {
  type        = number
  description = "Partitions of ticks, trades and signals: the job's ASCEP_JOB__PARTITIONS must be the same."
}

variable "retention_hours" {
  type        = number
  description = "How long ticks, trades and signals stay in Kafka; the lake keeps them for good."
  default     = 72
}
