# The maintenance Lambda (its code: infrastructure/lambda/maintenance/, handler handler.handler) on an
# EventBridge schedule: it compacts the small objects of closed hour partitions, restarts the Flink
# application from its latest snapshot when it has failed, and publishes the age of the newest signal and
# the job's consumer lag (read from ElastiCache, whose URL is in a Secrets Manager secret).
# One run at a time (reserved concurrency 1): two compactions of one hour must not race.

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
}

resource "aws_s3_object" "package" {
  bucket      = var.artifacts_bucket
  key         = "lambda/${var.name}.zip"
  source      = var.package_path
  source_hash = filemd5(var.package_path)
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arn}:*"]
  }
  # the environment's key encrypts the function's variables, the lake (SSE-KMS) and the Redis URL's secret
  statement {
    sid       = "TheEnvironmentsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "ReadTheRedisUrl"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.redis_url_secret_arn]
  }
  statement {
    sid = "RestartTheJob"
    actions = [
      "kinesisanalytics:DescribeApplication", "kinesisanalytics:ListApplicationOperations",
      "kinesisanalytics:ListApplicationSnapshots", "kinesisanalytics:StartApplication",
      "kinesisanalytics:StopApplication",
    ]
    resources = [var.flink_application_arn]
  }
  statement {
    sid       = "PublishFreshnessAndLag"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
  statement {
    sid       = "FindNetworkInterfaces"
    actions   = ["ec2:DescribeNetworkInterfaces"]
    resources = ["*"]
  }
  statement {
    sid = "NetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["arn:${local.partition}:ec2:*:*:network-interface/*"]
  }
  statement {
    sid     = "NetworkInterfacesInTheSubnets"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      [for id in var.subnet_ids : "arn:${local.partition}:ec2:*:*:subnet/${id}"],
      ["arn:${local.partition}:ec2:*:*:security-group/${var.security_group_id}"],
    )
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "maintenance"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# Compaction rewrites the lake's objects: the storage module's write policy.
resource "aws_iam_role_policy_attachment" "lake" {
  role       = aws_iam_role.this.name
  policy_arn = var.lake_write_policy_arn
}

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  kms_master_key_id         = var.kms_key_arn
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:the package is built and uploaded by the same apply that deploys it; there is no separate signing step to trust
  function_name                  = var.name
  description                    = "ASCEP maintenance: lake compaction, Flink restart, signal freshness, consumer lag"
  role                           = aws_iam_role.this.arn
  runtime                        = var.runtime
  handler                        = "handler.handler"
  s3_bucket                      = aws_s3_object.package.bucket
  s3_key                         = aws_s3_object.package.key
  s3_object_version              = aws_s3_object.package.version_id
  layers                         = var.layers
  timeout                        = var.timeout_s
  memory_size                    = var.memory_mb
  reserved_concurrent_executions = 1
  kms_key_arn                    = var.kms_key_arn

  # the secret this role may read is the one the handler is told to (MaintenanceSettings.redis_url_secret)
  environment {
    variables = merge(var.environment, { MAINTENANCE_REDIS_URL_SECRET = var.redis_url_secret_arn })
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }

  logging_config {
    log_format = "Text"
    log_group  = var.log_group_name
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letters.arn
  }

  depends_on = [aws_iam_role_policy.this, aws_iam_role_policy_attachment.lake]
}

resource "aws_cloudwatch_event_rule" "schedule" {
  name                = var.name
  description         = "Runs ${var.name}"
  schedule_expression = var.every_minutes == 1 ? "rate(1 minute)" : "rate(${var.every_minutes} minutes)"
}

resource "aws_cloudwatch_event_target" "lambda" {
  rule = aws_cloudwatch_event_rule.schedule.name
  arn  = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule.arn
}
