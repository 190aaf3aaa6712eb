output "application_name" {
  description = "Name of the Managed Flink application."
  value       = aws_kinesisanalyticsv2_application.this.name
}

output "application_arn" {
  description = "Its ARN."
  value       = aws_kinesisanalyticsv2_application.this.arn
}
