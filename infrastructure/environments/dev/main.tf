# The dev environment: `terraform init -backend-config=backend.hcl && terraform apply` (README, "Deploy").

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
    tags = { project = "ascep", environment = "dev" }
  }
}

module "ascep" {
  source = "../../modules/stack"
  name   = "ascep-dev"
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

  # dev: two zones, one NAT gateway, no interface endpoints (the NAT carries the AWS API traffic), the
  # smallest brokers, cache node and database, one partition and a parallelism of 1 (2 KPUs with the JobManager)
  az_count                       = 2
  nat_gateways                   = 1
  interface_endpoints            = false
  connectors                     = ["binance", "coinbase", "kraken"]
  partitions                     = 1
  msk_broker_count               = 2
  msk_instance_type              = "kafka.t3.small"
  msk_volume_gb                  = 50
  redis_node_type                = "cache.t4g.micro"
  redis_replicas                 = 0
  flink_parallelism              = 1
  flink_parallelism_per_kpu      = 1
  database_instance_class        = "db.t4g.micro"
  database_multi_az              = false
  database_backup_retention_days = 3
  dashboard_count                = 1
  deletion_protection            = false
  log_retention_days             = 14
}
