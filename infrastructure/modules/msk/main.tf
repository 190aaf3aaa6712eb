# MSK with TLS everywhere, IAM authentication only (port 9098), encrypted storage, broker logs in
# CloudWatch, and per-topic metrics (ticks/s and signals/s on the dashboard come from them).

locals {
  zones              = length(var.subnet_ids)
  replication_factor = min(3, var.broker_count)
  # a write is acknowledged by two replicas wherever there are three; a two-broker cluster accepts one
  min_insync = max(1, local.replication_factor - 1)
}

resource "aws_msk_configuration" "this" {
  name           = var.name
  kafka_versions = [var.kafka_version]
  # the product creates no topics on MSK: topics.tf declares them
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=${local.replication_factor}
    min.insync.replicas=${local.min_insync}
    unclean.leader.election.enable=false
  PROPERTIES
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [var.security_group_id]
    storage_info {
      ebs_storage_info {
        volume_size = var.volume_gb
      }
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      iam = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = var.log_group_name
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.broker_count % local.zones == 0
      error_message = "broker_count (${var.broker_count}) must be a multiple of the number of subnets (${local.zones})."
    }
  }
}

# The product's topics (core/contracts/topics.py), as `ascep up` creates them on its embedded broker
# (ascep/stack.py ensure_topics), with the cluster's replication: ticks, trades and signals have one
# partition count, which the job must be told (ASCEP_JOB__PARTITIONS); `rules` is compacted (key = rule id).

locals {
  retention_ms = tostring(var.retention_hours * 3600 * 1000)
  topics = {
    ticks      = { partitions = var.partitions, configs = { "cleanup.policy" = "delete", "retention.ms" = local.retention_ms } }
    trades     = { partitions = var.partitions, configs = { "cleanup.policy" = "delete", "retention.ms" = local.retention_ms } }
    signals    = { partitions = var.partitions, configs = { "cleanup.policy" = "delete", "retention.ms" = local.retention_ms } }
    deadletter = { partitions = 1, configs = { "cleanup.policy" = "delete", "retention.ms" = local.retention_ms } }
    rules      = { partitions = 1, configs = { "cleanup.policy" = "compact", "retention.ms" = "-1" } } # kept until deleted
  }
}
