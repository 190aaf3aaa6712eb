# The prod environment: `terraform init -backend-config=backend.hcl && terraform apply` (README, "Deploy").

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.38, < 7.0"
    }
  }
  # bucket, key, region and use_lockfile come from backend.hcl (backend.hcl.example)
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { project = "ascep", environment = "prod" }
  }
}

module "ascep" {
  source = "../../modules/stack"
  name   = "ascep-prod"
  region = var.region

  certificate_arn            = var.certificate_arn
  dashboard_ingress_cidrs    = var.dashboard_ingress_cidrs
  alarm_emails               = var.alarm_emails
  image_tag                  = var.image_tag
  application_key            = var.application_key
  application_object_version = var.application_object_version
  restore_type               = var.restore_type
  snapshot_name              = var.snapshot_name
  allow_non_restored_state   = var.allow_non_restored_state
  start_job                  = var.start_job
  maintenance_package        = var.maintenance_package
  maintenance_layers         = var.maintenance_layers
  settings                   = var.settings

  # prod: three zones, a NAT gateway and interface endpoints in each, three m7g brokers, a replicated
  # cache that fails over, four partitions and a parallelism of 4 (5 KPUs), two dashboard tasks on one
  # Multi-AZ database (a small instance: it holds users, tokens and sessions only)
  az_count                       = 3
  nat_gateways                   = 3
  interface_endpoints            = true
  connectors                     = ["binance", "coinbase", "kraken"]
  partitions                     = 4
  msk_broker_count               = 3
  msk_instance_type              = "kafka.m7g.large"
  msk_volume_gb                  = 500
  redis_node_type                = "cache.m7g.large"
  redis_replicas                 = 1
  flink_parallelism              = 4
  flink_parallelism_per_kpu      = 1
  database_instance_class        = "db.t4g.small"
  database_multi_az              = true
  database_backup_retention_days = 14
  dashboard_count                = 2
  deletion_protection            = true
  log_retention_days             = 90
}
