variable "name" {
  type        = string
  description = "Prefix of every name in this environment, e.g. ascep-dev."
}

variable "region" {
  type        = string
  description = "AWS region of the dashboard's widgets."
}

variable "kms_key_arn" {
  type        = string
  description = "Key that encrypts the log groups and the alarm topic."
}

variable "log_retention_days" {
  type        = number
  description = "Days every log group keeps its events."
}

variable "ecs_services" {
  type        = list(string)
  description = "ECS tasks that get a log group each: the dashboard, rules and every live connector."
}

variable "connectors" {
  type        = list(string)
  description = "Live connectors (venue names, as `ascep ingest` names them): each gets reconnect and silence metrics and alarms."
}

variable "alarm_emails" {
  type        = list(string)
  description = "Addresses subscribed to the alarm topic (each must confirm the subscription)."
  default     = []
}

variable "metric_namespace" {
  type        = string
  description = "CloudWatch namespace of the product's own metrics: the connectors' log metrics and what the maintenance Lambda publishes."
}

variable "freshness_metric" {
  type        = string
  description = "Metric the maintenance Lambda publishes in metric_namespace: seconds since the newest signal."
}

variable "lag_metric" {
  type        = string
  description = "Metric the maintenance Lambda publishes in metric_namespace, by dimension Stage: the records a stage of the job has not read yet (the job commits no Kafka offsets, so MSK's own lag metrics stay empty for it); the alarm watches Stage=read, the tick reader."
}

variable "msk_cluster_name" {
  type        = string
  description = "MSK cluster whose per-topic rates are ticks/s and signals/s."
}

variable "msk_broker_count" {
  type        = number
  description = "Brokers of the cluster: the per-broker topic rates are summed over broker ids 1..N."
}

variable "flink_application_name" {
  type        = string
  description = "Managed Flink application of the job."
}

variable "redis_cluster_ids" {
  type        = list(string)
  description = "Cache clusters (nodes) of the ElastiCache replication group."
}

variable "ecs_cluster_name" {
  type        = string
  description = "ECS cluster of the dashboard and the connectors (Container Insights metrics)."
}

variable "alb_arn_suffix" {
  type        = string
  description = "arn_suffix of the dashboard's load balancer."
}

variable "target_group_arn_suffix" {
  type        = string
  description = "arn_suffix of the dashboard's target group."
}

variable "maintenance_function_name" {
  type        = string
  description = "The maintenance Lambda, whose errors alarm too."
}

variable "maintenance_minutes" {
  type        = number
  description = "Minutes between the maintenance Lambda's runs, each of which publishes the freshness and lag metrics: the periods of their alarms."
}

variable "no_signals_minutes" {
  type        = number
  description = "Alarm when no signal state has been written to the signals topic for this long."
  default     = 30
}

variable "connector_silent_minutes" {
  type        = number
  description = "Window of the connector-silent alarm: two watchdog closes or failed connects within it (about a minute with no data frame) raise it."
  default     = 5
}

variable "lag_alarm_records" {
  type        = number
  description = "The lag alarm needs at least this many unread records of the tick reader, growing at three runs of the maintenance Lambda in a row."
  default     = 10000
}
