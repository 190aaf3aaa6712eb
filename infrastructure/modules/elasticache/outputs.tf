output "url" {
  description = "rediss://:TOKEN@primary:6379/0, for ASCEP_REDIS where a secret cannot be referenced (Managed Flink's properties)."
  value       = local.url
  sensitive   = true
}

output "url_secret_arn" {
  description = "Secret whose value is the same URL."
  value       = aws_secretsmanager_secret.this["url"].arn
}

output "cluster_ids" {
  description = "The group's cache clusters (nodes), for their CloudWatch metrics."
  value       = aws_elasticache_replication_group.this.member_clusters
}
