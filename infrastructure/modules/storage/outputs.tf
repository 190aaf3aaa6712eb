output "lake_uri" {
  description = "s3://bucket/prefix of the lake: ASCEP_LAKE."
  value       = local.lake_uri
}

output "lake_bucket_arn" {
  description = "ARN of the lake's bucket."
  value       = aws_s3_bucket.data["lake"].arn
}

output "lake_prefix" {
  description = "Folder of the lake in its bucket."
  value       = var.lake_prefix
}

output "artifacts_bucket" {
  description = "Bucket of the application zip and the Lambda's package."
  value       = aws_s3_bucket.data["artifacts"].id
}

output "artifacts_bucket_arn" {
  description = "Its ARN."
  value       = aws_s3_bucket.data["artifacts"].arn
}

output "logs_bucket" {
  description = "Bucket of the access logs; the ALB writes under alb/."
  value       = aws_s3_bucket.logs.id
}

output "athena_workgroup" {
  description = "Athena workgroup whose queries read the lake's Glue tables."
  value       = aws_athena_workgroup.lake.name
}

output "glue_database" {
  description = "Glue database of the ticks and signals tables."
  value       = aws_glue_catalog_database.lake.name
}

output "lake_policy_arns" {
  description = "ARNs of the managed policies `read` and `write` of the lake, for the roles to attach."
  value       = { for access, policy in aws_iam_policy.lake : access => policy.arn }
}
