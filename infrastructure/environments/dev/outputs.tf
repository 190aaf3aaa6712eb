output "dashboard_dns_name" {
  description = "The dashboard's load balancer: point the certificate's DNS name at it."
  value       = module.ascep.dashboard_dns_name
}

output "repository_url" {
  description = "ECR repository to push the product image to."
  value       = module.ascep.repository_url
}

output "artifacts_bucket" {
  description = "Bucket to upload the job's application zip to."
  value       = module.ascep.artifacts_bucket
}

output "lake_uri" {
  description = "The lake (ASCEP_LAKE): `ascep analytics --lake` reads it."
  value       = module.ascep.lake_uri
}

output "flink_application" {
  description = "The Managed Flink application (aws kinesisanalyticsv2 ... --application-name)."
  value       = module.ascep.flink_application
}

output "athena_workgroup" {
  description = "Athena workgroup for queries over the lake."
  value       = module.ascep.athena_workgroup
}

output "glue_database" {
  description = "Glue database of the ticks and signals tables."
  value       = module.ascep.glue_database
}

output "ecs_cluster" {
  description = "ECS cluster of the dashboard and the connectors."
  value       = module.ascep.ecs_cluster
}

output "rules_task" {
  description = "Task definition of `ascep rules` (README, \"Deploy\", step 7)."
  value       = module.ascep.rules_task
}

output "users_task_network" {
  description = "Subnets and security group of an `ascep users` task (infrastructure/README.md, \"Deploy\")."
  value       = module.ascep.users_task_network
}

output "rules_task_network" {
  description = "Subnets and security group of a rules task."
  value       = module.ascep.rules_task_network
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.ascep.alarm_topic_arn
}
