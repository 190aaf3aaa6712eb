# The dashboard's accounts, API tokens and sessions (ASCEP_DASHBOARD__DATABASE_URL, docs/configuration.md
# "Accounts and access"): PostgreSQL on RDS in the private subnets, TLS required, encrypted at rest, reached by
# the dashboard's tasks only. Every dashboard task shares it, so a login holds whichever task the ALB picks. The
# master password lives in Secrets Manager; so does the whole postgres:// URL the dashboard takes, as the
# elasticache module keeps ASCEP_REDIS.

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

# rds.force_ssl: no client without TLS. Statements slower than a second and every schema change go to the log.
resource "aws_db_parameter_group" "this" {
  name   = var.name
  family = "postgres${split(".", var.engine_version)[0]}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

# Drawn once: ignore_changes keeps the first value, so later plans (which read a new one) change nothing.
# Letters and digits only: the password goes into a URL.
data "aws_secretsmanager_random_password" "password" {
  password_length     = 40
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:the password is the instance's master password, which a rotation function would have to change in RDS and in the URL secret at once; rotate by hand (README, "The dashboard's database")
  for_each    = { password = "the master password of the dashboard's database", url = "the postgres:// URL with the password (ASCEP_DASHBOARD__DATABASE_URL)" }
  name        = "${var.name}/${each.key}"
  description = "${var.name}: ${each.value}"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "password" {
  secret_id     = aws_secretsmanager_secret.this["password"].id
  secret_string = jsonencode({ password = data.aws_secretsmanager_random_password.password.random_password })
  lifecycle {
    ignore_changes = [secret_string]
  }
}

locals {
  password = jsondecode(aws_secretsmanager_secret_version.password.secret_string).password
  database = "ascep"
  user     = "ascep"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_161:the dashboard logs in with the password from Secrets Manager; IAM authentication would need a token refreshed every 15 minutes, which Django's PostgreSQL backend does not do
  #checkov:skip=CKV_AWS_118:RDS's own CloudWatch metrics cover a database of a few users and sessions; enhanced monitoring's OS metrics would need a role of their own for nothing the dashboard needs
  #checkov:skip=CKV_AWS_157:dev runs a single instance to save cost; prod sets multi_az = true
  #checkov:skip=CKV_AWS_293:deletion_protection is the environment's: dev leaves it off so that it can be torn down, prod sets it (and a final snapshot is taken either way)
  identifier                      = var.name
  engine                          = "postgres"
  engine_version                  = var.engine_version
  instance_class                  = var.instance_class
  allocated_storage               = 20
  max_allocated_storage           = 100
  storage_type                    = "gp3"
  storage_encrypted               = true
  kms_key_id                      = var.kms_key_arn
  db_name                         = local.database
  username                        = local.user
  password                        = local.password
  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [var.security_group_id]
  parameter_group_name            = aws_db_parameter_group.this.name
  publicly_accessible             = false
  multi_az                        = var.multi_az
  ca_cert_identifier              = "rds-ca-rsa2048-g1"
  backup_retention_period         = var.backup_retention_days
  copy_tags_to_snapshot           = true
  deletion_protection             = var.deletion_protection
  skip_final_snapshot             = false
  final_snapshot_identifier       = "${var.name}-final"
  auto_minor_version_upgrade      = true
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  performance_insights_enabled    = true
  performance_insights_kms_key_id = var.kms_key_arn
  apply_immediately               = false

  lifecycle {
    precondition {
      condition     = var.log_group_name == "/aws/rds/instance/${var.name}/postgresql"
      error_message = "RDS exports the log to /aws/rds/instance/<identifier>/postgresql: the monitoring module must make that group (with its retention and key) before the instance exists."
    }
  }
}

# TLS is required (rds.force_ssl); the tasks have no RDS CA bundle to verify it with, inside the VPC.
resource "aws_secretsmanager_secret_version" "url" {
  secret_id     = aws_secretsmanager_secret.this["url"].id
  secret_string = "postgres://${local.user}:${local.password}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${local.database}?sslmode=require"
}
