output "log_group_names" {
  description = "Log group of each part: ecs-<service>, msk, flink, redis, maintenance, flow-logs, waf."
  value       = { for key, group in aws_cloudwatch_log_group.this : key => group.name }
}

output "log_group_arns" {
  description = "The same log groups' ARNs."
  value       = { for key, group in aws_cloudwatch_log_group.this : key => group.arn }
}

output "flink_log_stream_arn" {
  description = "Log stream the Managed Flink application writes to."
  value       = "${aws_cloudwatch_log_group.this["flink"].arn}:log-stream:${aws_cloudwatch_log_stream.flink.name}"
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}
