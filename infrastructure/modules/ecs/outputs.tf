output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "repository_url" {
  description = "ECR repository of the product image: push <url>:<image_tag> before applying."
  value       = aws_ecr_repository.ascep.repository_url
}

output "dashboard_dns_name" {
  description = "The ALB's name in DNS: point the certificate's name at it (CNAME or alias)."
  value       = aws_lb.dashboard.dns_name
}

output "alb_arn_suffix" {
  description = "arn_suffix of the ALB (its CloudWatch dimension)."
  value       = aws_lb.dashboard.arn_suffix
}

output "target_group_arn_suffix" {
  description = "arn_suffix of the dashboard's target group."
  value       = aws_lb_target_group.dashboard.arn_suffix
}

output "rules_task" {
  description = "Task definition family of `ascep rules` (aws ecs run-task with a command override)."
  value       = aws_ecs_task_definition.this["rules"].family
}
