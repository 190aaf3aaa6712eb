# Log groups of every part, the connectors' log metrics, one CloudWatch dashboard and the alarms, which
# notify an SNS topic.

locals {
  log_groups = merge(
    { for service in var.ecs_services : "ecs-${service}" => "/ascep/${var.name}/ecs/${service}" },
    {
      msk         = "/ascep/${var.name}/msk"
      flink       = "/ascep/${var.name}/flink"
      redis       = "/ascep/${var.name}/redis-slow-log"
      database    = "/aws/rds/instance/${var.name}-dashboard/postgresql" # RDS exports to this name
      maintenance = "/aws/lambda/${var.name}-maintenance"
      flow-logs   = "/ascep/${var.name}/vpc-flow-logs"
      waf         = "aws-waf-logs-${var.name}" # WAF only writes to groups named aws-waf-logs-*
    },
  )
  brokers = [for id in range(1, var.msk_broker_count + 1) : tostring(id)]
  alarm   = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_log_group" "this" {
  for_each          = local.log_groups
  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_stream" "flink" {
  name           = "job"
  log_group_name = aws_cloudwatch_log_group.this["flink"].name
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# The connectors log one JSON object a line (core/log.py): "disconnected" with a reason (rotation is a
# planned reconnect), and "connect failed"; a watchdog close means no data frame came for 30 s.
locals {
  connector_metrics = {
    ConnectorReconnects = "{ $.msg = \"disconnected\" && $.reason != \"rotation\" && $.reason != \"stopped\" }"
    ConnectorStalls     = "{ ($.msg = \"disconnected\" && $.reason = \"watchdog*\") || $.msg = \"connect failed\" }"
  }
  connector_filters = merge([
    for connector in var.connectors : {
      for metric, pattern in local.connector_metrics : "${connector}-${metric}" => {
        connector = connector, metric = metric, pattern = pattern
      }
    }
  ]...)
}

resource "aws_cloudwatch_log_metric_filter" "connector" {
  for_each       = local.connector_filters
  name           = "${var.name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.this["ecs-${each.value.connector}"].name
  pattern        = each.value.pattern
  metric_transformation {
    name       = each.value.metric
    namespace  = var.metric_namespace
    value      = "1"
    dimensions = { venue = "$.venue" }
  }
}

# -- alarms ----------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "job_down" {
  alarm_name          = "${var.name}-job-down"
  alarm_description   = "The Managed Flink job is not running (downtime > 0, or no metric at all)."
  namespace           = "AWS/KinesisAnalytics"
  metric_name         = "downtime"
  dimensions          = { Application = var.flink_application_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
}

# fullRestarts and numberOfFailedCheckpoints count since the job started: a rise within a period is an event.
locals {
  counter_alarms = {
    job-restarting      = { metric = "fullRestarts", what = "The Flink job restarted (fullRestarts rose)." }
    checkpoints-failing = { metric = "numberOfFailedCheckpoints", what = "A checkpoint of the Flink job failed." }
  }
}

resource "aws_cloudwatch_metric_alarm" "job_counter" {
  for_each            = local.counter_alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.what
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  metric_query {
    id          = "rise"
    expression  = "high - low"
    label       = "${each.value.metric} rise"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = { high = "Maximum", low = "Minimum" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/KinesisAnalytics"
        metric_name = each.value.metric
        dimensions  = { Application = var.flink_application_name }
        stat        = metric_query.value
        period      = 300
      }
    }
  }
}

# The maintenance Lambda publishes the lag once a run (one data point a period); the tick reader's stage is
# what signals wait on. Missing data is left out of the evaluation: a run that published nothing is an alarm
# of its own (maintenance-errors when it failed, signals-stale when it did not run, job-down when the job
# never reported its place).
resource "aws_cloudwatch_metric_alarm" "lag_growing" {
  alarm_name          = "${var.name}-lag-growing"
  alarm_description   = "The job's tick reader has at least ${var.lag_alarm_records} unread records of ticks (${var.lag_metric}, Stage=read, which the maintenance Lambda publishes every ${var.maintenance_minutes} minutes from the readers' places and the topic ends in Redis), and the figure grew at each of the last three runs. No data (INSUFFICIENT_DATA) means no figure: the Lambda failed (maintenance-errors: Redis unreachable or its token refused, or the secret unreadable), did not run (signals-stale), or Redis holds no place of the tick reader or no end of ticks; the Lambda's log says which."
  evaluation_periods  = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  metric_query {
    id          = "growing"
    expression  = "IF(lag >= ${var.lag_alarm_records} AND RATE(lag) > 0, 1, 0)"
    return_data = true
  }
  metric_query {
    id = "lag"
    metric {
      namespace   = var.metric_namespace
      metric_name = var.lag_metric
      dimensions  = { Stage = "read" }
      stat        = "Maximum"
      period      = var.maintenance_minutes * 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "no_signals" {
  alarm_name          = "${var.name}-no-signals"
  alarm_description   = "No signal state reached the signals topic for ${var.no_signals_minutes} minutes."
  evaluation_periods  = 1
  comparison_operator = "LessThanOrEqualToThreshold"
  threshold           = 0
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
  metric_query {
    id          = "signals"
    expression  = "SUM([${join(",", [for id in local.brokers : "b${id}"])}])"
    label       = "signal records/s"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = toset(local.brokers)
    content {
      id = "b${metric_query.value}"
      metric {
        namespace   = "AWS/Kafka"
        metric_name = "MessagesInPerSec"
        dimensions  = { "Cluster Name" = var.msk_cluster_name, "Broker ID" = metric_query.value, Topic = "signals" }
        stat        = "Sum"
        period      = var.no_signals_minutes * 60
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "signals_stale" {
  alarm_name          = "${var.name}-signals-stale"
  alarm_description   = "The newest signal is older than ${var.no_signals_minutes} minutes, as the maintenance Lambda measures it (no data: the Lambda is not running)."
  namespace           = var.metric_namespace
  metric_name         = var.freshness_metric
  statistic           = "Minimum"
  period              = 2 * var.maintenance_minutes * 60 # two runs of the Lambda: one late run is no alarm
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.no_signals_minutes * 60
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
}

resource "aws_cloudwatch_metric_alarm" "connector_silent" {
  for_each            = toset(var.connectors)
  alarm_name          = "${var.name}-connector-silent-${each.key}"
  alarm_description   = "The ${each.key} connector got no data frame for about a minute: two watchdog closes or failed connects within ${var.connector_silent_minutes} minutes."
  namespace           = var.metric_namespace
  metric_name         = "ConnectorStalls"
  dimensions          = { venue = each.key }
  statistic           = "Sum"
  period              = var.connector_silent_minutes * 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
}

resource "aws_cloudwatch_metric_alarm" "connector_stopped" {
  for_each            = toset(var.connectors)
  alarm_name          = "${var.name}-connector-stopped-${each.key}"
  alarm_description   = "No task of the ${each.key} connector is running (a silent connector that logs nothing)."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = var.ecs_cluster_name, ServiceName = "connector-${each.key}" }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm
  ok_actions          = local.alarm
}

resource "aws_cloudwatch_metric_alarm" "maintenance_errors" {
  alarm_name          = "${var.name}-maintenance-errors"
  alarm_description   = "The maintenance Lambda failed (compaction, restart, freshness or lag: then the lag alarm has no data)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.maintenance_function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm
}

# -- dashboard ---------------------------------------------------------------------------------------

locals {
  topic_rate = { for topic in ["ticks", "signals"] : topic => "SUM(SEARCH('{AWS/Kafka,\"Broker ID\",\"Cluster Name\",Topic} MetricName=\"MessagesInPerSec\" \"Cluster Name\"=\"${var.msk_cluster_name}\" Topic=\"${topic}\"', 'Average', 60))" }
  widgets = [
    {
      title = "Flink job: restarts and checkpoints"
      metrics = [
        ["AWS/KinesisAnalytics", "fullRestarts", "Application", var.flink_application_name, { stat = "Maximum" }],
        ["AWS/KinesisAnalytics", "numberOfFailedCheckpoints", "Application", var.flink_application_name, { stat = "Maximum" }],
        ["AWS/KinesisAnalytics", "lastCheckpointDuration", "Application", var.flink_application_name, { stat = "Maximum", yAxis = "right" }],
        ["AWS/KinesisAnalytics", "downtime", "Application", var.flink_application_name, { stat = "Maximum", yAxis = "right" }],
      ]
    },
    {
      title = "Records per second into ticks and signals (MSK, summed over brokers)"
      metrics = [
        [{ expression = local.topic_rate.ticks, label = "ticks records/s", id = "ticks" }],
        [{ expression = local.topic_rate.signals, label = "signals records/s", id = "signals" }],
      ]
    },
    {
      title = "Consumer lag (unread records: tick reader, lake) and age of the newest signal"
      metrics = [
        [var.metric_namespace, var.lag_metric, "Stage", "read", { stat = "Maximum" }],
        [var.metric_namespace, var.lag_metric, "Stage", "lake", { stat = "Maximum" }],
        [var.metric_namespace, var.freshness_metric, { stat = "Minimum", yAxis = "right" }],
      ]
    },
    {
      title = "Connector reconnects and stalls"
      metrics = flatten([for connector in var.connectors : [
        [var.metric_namespace, "ConnectorReconnects", "venue", connector, { stat = "Sum" }],
        [var.metric_namespace, "ConnectorStalls", "venue", connector, { stat = "Sum" }],
      ]])
    },
    {
      title = "ElastiCache"
      metrics = flatten([for id in var.redis_cluster_ids : [
        ["AWS/ElastiCache", "EngineCPUUtilization", "CacheClusterId", id],
        ["AWS/ElastiCache", "DatabaseMemoryUsagePercentage", "CacheClusterId", id],
        ["AWS/ElastiCache", "CurrConnections", "CacheClusterId", id, { yAxis = "right" }],
      ]])
    },
    {
      title = "Dashboard load balancer"
      metrics = [
        ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum" }],
        ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum" }],
        ["AWS/ApplicationELB", "ActiveConnectionCount", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum" }],
        ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", var.target_group_arn_suffix, "LoadBalancer", var.alb_arn_suffix, { stat = "Minimum", yAxis = "right" }],
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p99", yAxis = "right" }],
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [for i, widget in local.widgets : {
      type       = "metric"
      x          = (i % 2) * 12
      y          = floor(i / 2) * 6
      width      = 12
      height     = 6
      properties = { title = widget.title, metrics = widget.metrics, region = var.region, view = "timeSeries", stat = "Average", period = 60 }
    }]
  })
}
