output "dashboard_dns_name" {
  description = "The dashboard's load balancer: point the certificate's DNS name at it."
  value       = module.ecs.dashboard_dns_name
}

output "repository_url" {
  description = "ECR repository of the product image."
  value       = module.ecs.repository_url
}

output "artifacts_bucket" {
  description = "Bucket of the application zips."
  value       = module.storage.artifacts_bucket
}

output "lake_uri" {
  description = "ASCEP_LAKE of every part."
  value       = module.storage.lake_uri
}

output "flink_application" {
  description = "Name of the Managed Flink application."
  value       = module.flink.application_name
}

output "athena_workgroup" {
  description = "Athena workgroup for queries over the lake."
  value       = module.storage.athena_workgroup
}

output "glue_database" {
  description = "Glue database of the lake's ticks and signals tables."
  value       = module.storage.glue_database
}

output "ecs_cluster" {
  description = "ECS cluster of the dashboard and the connectors."
  value       = module.ecs.cluster_name
}

output "rules_task" {
  description = "Task definition of `ascep rules`, for one-off ECS tasks."
  value       = module.ecs.rules_task
}

output "rules_task_network" {
  description = "Subnets and security group a rules task runs with (it reaches MSK)."
  value       = { subnets = module.network.private_subnet_ids, security_group = module.network.security_group_ids["connectors"] }
}

output "users_task_network" {
  description = "Subnets and security group an `ascep users` task (of the rules task definition) runs with: it reaches the dashboard's database."
  value       = { subnets = module.network.private_subnet_ids, security_group = module.network.security_group_ids["dashboard"] }
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms (subscribe chat or paging to it)."
  value       = module.monitoring.alarm_topic_arn
}
