output "cluster_arn" {
  description = "ARN of the cluster."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the cluster (a dimension of its CloudWatch metrics)."
  value       = aws_msk_cluster.this.cluster_name
}

output "bootstrap_brokers" {
  description = "Bootstrap servers for IAM authentication (port 9098): ASCEP_KAFKA."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "topic_arn_prefix" {
  description = "ARN of the cluster's topics without the topic name: <prefix>/<topic> is a topic's ARN in IAM policies."
  value       = replace(aws_msk_cluster.this.arn, ":cluster/", ":topic/")
}

output "group_arn_prefix" {
  description = "The same for consumer groups."
  value       = replace(aws_msk_cluster.this.arn, ":cluster/", ":group/")
}

output "topics" {
  description = "Names of the topics."
  value       = keys(local.topics)
}
