# The whole product in one environment; environments/dev and environments/prod call this with their sizes.

locals {
  dashboard_port   = 8000
  metric_namespace = "ASCEP/${var.name}"
  flink_name       = var.name
  maintenance_name = "${var.name}-maintenance"
  # every venue a tick can carry: the live connectors, the simulated markets and Alpha Vantage's FX rates
  venues = distinct(concat(var.connectors, ["binance", "binance_us", "coinbase", "gemini", "kraken", "okx", "fx_ecn", "fx_dealer", "alphavantage"]))

  # Settings reach every part as ASCEP_* environment variables (Managed Flink: the property group `ascep`).
  kafka = {
    ASCEP_KAFKA                          = module.msk.bootstrap_brokers
    ASCEP_KAFKA_SECURITY__PROTOCOL       = "sasl_ssl"
    ASCEP_KAFKA_SECURITY__SASL_MECHANISM = "OAUTHBEARER"
    ASCEP_KAFKA_SECURITY__MSK_IAM_REGION = var.region
  }
  job_settings = merge(var.settings, local.kafka, {
    ASCEP_REDIS           = module.elasticache.url
    ASCEP_LAKE            = module.storage.lake_uri
    ASCEP_JOB__PARTITIONS = tostring(var.partitions)
  })
  # Reading needs a login (or an API token); the ALB ends TLS and is the one proxy whose X-Forwarded-* to believe.
  dashboard_settings = merge(var.settings, {
    ASCEP_LAKE                      = module.storage.lake_uri
    ASCEP_DASHBOARD__HOST           = "0.0.0.0"
    ASCEP_DASHBOARD__PORT           = tostring(local.dashboard_port)
    ASCEP_DASHBOARD__ANONYMOUS_READ = "false"
    ASCEP_DASHBOARD__HTTPS          = "true"
    ASCEP_DASHBOARD__PROXY_COUNT    = "1"
  })
  connector_settings = merge(var.settings, local.kafka)
  freshness_metric   = "SignalAgeSeconds"
  lag_metric         = "ConsumerLag"
}

module "kms" {
  source = "../kms"
  name   = var.name
  region = var.region
}

module "network" {
  source                  = "../network"
  name                    = var.name
  region                  = var.region
  az_count                = var.az_count
  nat_gateways            = var.nat_gateways
  interface_endpoints     = var.interface_endpoints
  dashboard_ingress_cidrs = var.dashboard_ingress_cidrs
  dashboard_port          = local.dashboard_port
  flow_log_group_arn      = module.monitoring.log_group_arns["flow-logs"]
}

module "storage" {
  source      = "../storage"
  name        = var.name
  kms_key_arn = module.kms.key_arn
  venues      = local.venues
}

module "msk" {
  source            = "../msk"
  name              = var.name
  broker_count      = var.msk_broker_count
  instance_type     = var.msk_instance_type
  volume_gb         = var.msk_volume_gb
  subnet_ids        = module.network.private_subnet_ids
  security_group_id = module.network.security_group_ids["msk"]
  kms_key_arn       = module.kms.key_arn
  log_group_name    = module.monitoring.log_group_names["msk"]
  partitions        = var.partitions
}

module "database" {
  source                = "../database"
  name                  = "${var.name}-dashboard"
  instance_class        = var.database_instance_class
  multi_az              = var.database_multi_az
  deletion_protection   = var.deletion_protection
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.network.security_group_ids["database"]
  kms_key_arn           = module.kms.key_arn
  log_group_name        = module.monitoring.log_group_names["database"]
  backup_retention_days = var.database_backup_retention_days
}

module "elasticache" {
  source            = "../elasticache"
  name              = var.name
  node_type         = var.redis_node_type
  replicas          = var.redis_replicas
  subnet_ids        = module.network.private_subnet_ids
  security_group_id = module.network.security_group_ids["redis"]
  kms_key_arn       = module.kms.key_arn
  log_group_name    = module.monitoring.log_group_names["redis"]
}

module "flink" {
  source                     = "../flink"
  name                       = local.flink_name
  artifacts_bucket_arn       = module.storage.artifacts_bucket_arn
  application_key            = var.application_key
  application_object_version = var.application_object_version
  settings                   = local.job_settings
  parallelism                = var.flink_parallelism
  parallelism_per_kpu        = var.flink_parallelism_per_kpu
  restore_type               = var.restore_type
  snapshot_name              = var.snapshot_name
  allow_non_restored_state   = var.allow_non_restored_state
  start                      = var.start_job
  subnet_ids                 = module.network.private_subnet_ids
  security_group_id          = module.network.security_group_ids["flink"]
  log_group_arn              = module.monitoring.log_group_arns["flink"]
  log_stream_arn             = module.monitoring.flink_log_stream_arn
  kms_key_arn                = module.kms.key_arn
  lake_write_policy_arn      = module.storage.lake_policy_arns["write"]
  msk_cluster_arn            = module.msk.cluster_arn
  msk_topic_arn_prefix       = module.msk.topic_arn_prefix
  msk_group_arn_prefix       = module.msk.group_arn_prefix
}

module "ecs" {
  source                  = "../ecs"
  name                    = var.name
  region                  = var.region
  image_tag               = var.image_tag
  connectors              = var.connectors
  dashboard_count         = var.dashboard_count
  dashboard_port          = local.dashboard_port
  dashboard_settings      = local.dashboard_settings
  connector_settings      = local.connector_settings
  redis_url_secret_arn    = module.elasticache.url_secret_arn
  database_url_secret_arn = module.database.url_secret_arn
  certificate_arn         = var.certificate_arn
  vpc_id                  = module.network.vpc_id
  public_subnet_ids       = module.network.public_subnet_ids
  private_subnet_ids      = module.network.private_subnet_ids
  security_group_ids      = module.network.security_group_ids
  kms_key_arn             = module.kms.key_arn
  log_group_names         = module.monitoring.log_group_names
  log_group_arns          = module.monitoring.log_group_arns
  logs_bucket             = module.storage.logs_bucket
  lake_read_policy_arn    = module.storage.lake_policy_arns["read"]
  msk_cluster_arn         = module.msk.cluster_arn
  msk_topic_arn_prefix    = module.msk.topic_arn_prefix
  msk_group_arn_prefix    = module.msk.group_arn_prefix
  deletion_protection     = var.deletion_protection
}

# The maintenance Lambda publishes its metrics at every run: the alarms on them take their periods from this.
locals {
  maintenance_minutes = 15
}

module "maintenance" {
  source                = "../maintenance"
  name                  = local.maintenance_name
  package_path          = var.maintenance_package
  artifacts_bucket      = module.storage.artifacts_bucket
  layers                = var.maintenance_layers
  every_minutes         = local.maintenance_minutes
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.network.security_group_ids["maintenance"]
  kms_key_arn           = module.kms.key_arn
  log_group_name        = module.monitoring.log_group_names["maintenance"]
  log_group_arn         = module.monitoring.log_group_arns["maintenance"]
  lake_write_policy_arn = module.storage.lake_policy_arns["write"]
  flink_application_arn = module.flink.application_arn
  redis_url_secret_arn  = module.elasticache.url_secret_arn
  metric_namespace      = local.metric_namespace
  # the handler's settings (MaintenanceSettings in infrastructure/lambda/maintenance/handler.py; the module adds
  # MAINTENANCE_REDIS_URL_SECRET); it publishes local.freshness_metric and local.lag_metric (by Stage), the
  # names they have in the handler
  environment = {
    ASCEP_LAKE                    = module.storage.lake_uri
    MAINTENANCE_FLINK_APPLICATION = local.flink_name
    MAINTENANCE_METRIC_NAMESPACE  = local.metric_namespace
  }
}

module "monitoring" {
  source                    = "../monitoring"
  name                      = var.name
  region                    = var.region
  kms_key_arn               = module.kms.key_arn
  log_retention_days        = var.log_retention_days
  ecs_services              = concat(["dashboard", "rules"], [for venue in var.connectors : "connector-${venue}"])
  connectors                = var.connectors
  alarm_emails              = var.alarm_emails
  metric_namespace          = local.metric_namespace
  freshness_metric          = local.freshness_metric
  lag_metric                = local.lag_metric
  msk_cluster_name          = module.msk.cluster_name
  msk_broker_count          = var.msk_broker_count
  flink_application_name    = local.flink_name
  redis_cluster_ids         = module.elasticache.cluster_ids
  ecs_cluster_name          = module.ecs.cluster_name
  alb_arn_suffix            = module.ecs.alb_arn_suffix
  target_group_arn_suffix   = module.ecs.target_group_arn_suffix
  maintenance_function_name = local.maintenance_name
  maintenance_minutes       = local.maintenance_minutes
}
