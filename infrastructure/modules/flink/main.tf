# The job on Amazon Managed Service for Apache Flink: a Python application from a zip on S3. The service
# writes the property groups to /etc/flink/application_properties.json; the job's entry point applies the
# group `ascep` as environment variables of the same names (a real environment variable wins).

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  run_options = {
    python  = "ascep_job.py" # at the zip's root
    pyFiles = var.py_files
  }
  # what this module sets itself, so the job and the service agree on it
  settings = merge(var.settings, {
    ASCEP_JOB__PARALLELISM            = tostring(var.parallelism)
    ASCEP_JOB__CHECKPOINT_INTERVAL_MS = tostring(var.checkpoint_interval_ms)
  })
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["kinesisanalytics.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-flink"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# Least privilege: its zip, the lake (the storage module's write policy), the topics it reads and writes, its log stream, and the
# network interfaces the service makes in the VPC.
data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ReadTheApplicationZip"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.artifacts_bucket_arn}/${var.application_key}"]
  }
  statement {
    sid       = "ZipKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["s3.*.amazonaws.com"]
    }
  }
  statement {
    sid       = "ConnectToMsk"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }
  statement {
    sid       = "ReadTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [for topic in var.topics_read : "${var.msk_topic_arn_prefix}/${topic}"]
  }
  statement {
    sid       = "WriteTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = [for topic in var.topics_written : "${var.msk_topic_arn_prefix}/${topic}"]
  }
  statement {
    sid       = "ConsumerGroup"
    actions   = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    resources = ["${var.msk_group_arn_prefix}/ascep-job"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${var.log_group_arn}:*"]
  }
  statement {
    sid       = "FindLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }
  statement {
    sid = "DescribeTheVpc"
    actions = [
      "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeDhcpOptions",
      "ec2:DescribeNetworkInterfaces",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "NetworkInterfaces"
    actions   = ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"]
    resources = ["arn:${data.aws_partition.current.partition}:ec2:*:*:network-interface/*"]
  }
  statement {
    sid     = "NetworkInterfacesInTheSubnets"
    actions = ["ec2:CreateNetworkInterface"]
    resources = concat(
      [for id in var.subnet_ids : "arn:${data.aws_partition.current.partition}:ec2:*:*:subnet/${id}"],
      ["arn:${data.aws_partition.current.partition}:ec2:*:*:security-group/${var.security_group_id}"],
    )
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "ascep-job"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

resource "aws_iam_role_policy_attachment" "lake" {
  role       = aws_iam_role.this.name
  policy_arn = var.lake_write_policy_arn
}

resource "aws_kinesisanalyticsv2_application" "this" {
  name                   = var.name
  description            = "ASCEP: arbitrage signals by complex event processing"
  runtime_environment    = var.runtime_environment
  service_execution_role = aws_iam_role.this.arn
  start_application      = var.start

  application_configuration {
    application_code_configuration {
      code_content_type = "ZIPFILE"
      code_content {
        s3_content_location {
          bucket_arn     = var.artifacts_bucket_arn
          file_key       = var.application_key
          object_version = var.application_object_version
        }
      }
    }

    environment_properties {
      property_group {
        property_group_id = "kinesis.analytics.flink.run.options"
        property_map      = local.run_options
      }
      property_group {
        property_group_id = "ascep"
        property_map      = local.settings
      }
    }

    application_snapshot_configuration {
      snapshots_enabled = true
    }

    flink_application_configuration {
      checkpoint_configuration {
        configuration_type            = "CUSTOM"
        checkpointing_enabled         = true
        checkpoint_interval           = var.checkpoint_interval_ms
        min_pause_between_checkpoints = var.min_pause_between_checkpoints_ms
      }
      monitoring_configuration {
        configuration_type = "CUSTOM"
        log_level          = "INFO"
        metrics_level      = "APPLICATION"
      }
      parallelism_configuration {
        configuration_type   = "CUSTOM"
        parallelism          = var.parallelism
        parallelism_per_kpu  = var.parallelism_per_kpu
        auto_scaling_enabled = false # the detection buckets are fixed for the life of a checkpoint
      }
    }

    run_configuration {
      application_restore_configuration {
        application_restore_type = var.restore_type
        snapshot_name            = var.snapshot_name
      }
      flink_run_configuration {
        allow_non_restored_state = var.allow_non_restored_state
      }
    }

    vpc_configuration {
      subnet_ids         = var.subnet_ids
      security_group_ids = [var.security_group_id]
    }
  }

  cloudwatch_logging_options {
    log_stream_arn = var.log_stream_arn
  }

  lifecycle {
    precondition {
      condition     = (var.restore_type == "RESTORE_FROM_CUSTOM_SNAPSHOT") == (var.snapshot_name != null)
      error_message = "snapshot_name is needed with RESTORE_FROM_CUSTOM_SNAPSHOT, and only with it."
    }
  }
}
