# The product's Redis clients (redis-py's plain client) do not speak Redis Cluster, so this is a replication
# group with cluster mode disabled: one shard, a primary and `replicas` replicas, TLS in transit, an auth token, encryption at rest. The
# token lives in Secrets Manager; so does the whole rediss:// URL that the product's ASCEP_REDIS takes.

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

# Drawn once: ignore_changes keeps the first value, so later plans (which read a new one) change nothing.
# ElastiCache tokens may not contain / " or @, hence letters and digits only.
data "aws_secretsmanager_random_password" "token" {
  password_length     = 64
  exclude_punctuation = true
}

# Two secrets, not two versions of one: a version that loses its last staging label is deleted, and the
# token's would then be drawn again.
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:the token is rotated through ElastiCache (auth_token_update_strategy ROTATE, README "Rotate the Redis token"), which a Secrets Manager rotation function cannot drive on its own
  for_each    = { token = "the ElastiCache auth token", url = "the rediss:// URL with the token (ASCEP_REDIS)" }
  name        = "${var.name}/redis-${each.key}"
  description = "${var.name}: ${each.value}"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "token" {
  secret_id     = aws_secretsmanager_secret.this["token"].id
  secret_string = jsonencode({ auth_token = data.aws_secretsmanager_random_password.token.random_password })
  lifecycle {
    ignore_changes = [secret_string]
  }
}

locals {
  token = jsondecode(aws_secretsmanager_secret_version.token.secret_string).auth_token
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV2_AWS_50:dev runs a single node to save cost; prod sets replicas = 1, which turns on automatic failover and Multi-AZ
  replication_group_id       = var.name
  description                = "${var.name}: live signals, prices and rules in force"
  engine                     = "redis"
  engine_version             = var.engine_version
  node_type                  = var.node_type
  cluster_mode               = "disabled"
  num_cache_clusters         = 1 + var.replicas
  automatic_failover_enabled = var.replicas > 0
  multi_az_enabled           = var.replicas > 0
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [var.security_group_id]
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = local.token
  auth_token_update_strategy = "ROTATE"
  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.snapshot_retention_days
  apply_immediately          = false

  log_delivery_configuration {
    destination      = var.log_group_name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

locals {
  url = "rediss://:${local.token}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0"
}

# ECS tasks take ASCEP_REDIS from this secret; the maintenance Lambda reads it (MAINTENANCE_REDIS_URL_SECRET).
resource "aws_secretsmanager_secret_version" "url" {
  secret_id     = aws_secretsmanager_secret.this["url"].id
  secret_string = local.url
}
