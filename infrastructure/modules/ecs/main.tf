# The product image on Fargate: the dashboard behind the ALB, one service per live connector, and a task
# definition without a service for `ascep rules` and `ascep users` (run as one-off tasks). Tasks run in private
# subnets with no public address, get their settings as ASCEP_* environment variables, and ASCEP_REDIS (which
# holds the auth token) from Secrets Manager; the dashboard and the one-off tasks also its database's URL and the
# key that signs its sessions.

locals {
  image = "${aws_ecr_repository.ascep.repository_url}:${var.image_tag}"
  tasks = merge(
    {
      dashboard = {
        command  = ["dashboard"]
        settings = var.dashboard_settings
        role     = "dashboard"
        cpu      = 512
        memory   = 1024
        port     = var.dashboard_port
      }
      # `aws ecs run-task ... --overrides` with the command, e.g. ["rules", "add", "--template", ...]
      rules = {
        command  = ["rules", "list"]
        settings = var.connector_settings # the same Kafka settings
        role     = "rules"
        cpu      = 256
        memory   = 512
        port     = null
      }
    },
    { for venue in var.connectors : "connector-${venue}" => {
      command  = ["ingest", venue]
      settings = var.connector_settings
      role     = "connectors"
      cpu      = 256
      memory   = 512
      port     = null
    } },
  )
  services = { for key, task in local.tasks : key => task if key != "rules" }
  # Every task reaches Redis; the dashboard and the one-off tasks (`ascep users` there) also its accounts.
  redis_secret = { ASCEP_REDIS = var.redis_url_secret_arn }
  dashboard_secrets = merge(local.redis_secret, {
    ASCEP_DASHBOARD__DATABASE_URL = var.database_url_secret_arn
    ASCEP_DASHBOARD__SECRET_KEY   = aws_secretsmanager_secret.dashboard_key.arn
  })
  secrets = { for key, task in local.tasks : key => contains(["dashboard", "rules"], key) ? local.dashboard_secrets : local.redis_secret }
}

# Signs the dashboard's sessions and CSRF tokens: one key for every dashboard task, or a login would hold on one
# of them only. Drawn once (ignore_changes); a new value logs everyone out.
data "aws_secretsmanager_random_password" "dashboard_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret" "dashboard_key" {
  #checkov:skip=CKV2_AWS_57:a new key logs every user out; rotate it by hand when it may have leaked (README, "The dashboard's database")
  name        = "${var.name}/dashboard-secret-key"
  description = "${var.name}: the key that signs the dashboard's sessions (ASCEP_DASHBOARD__SECRET_KEY)"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "dashboard_key" {
  secret_id     = aws_secretsmanager_secret.dashboard_key.id
  secret_string = data.aws_secretsmanager_random_password.dashboard_key.random_password
  lifecycle {
    ignore_changes = [secret_string]
  }
}

resource "aws_ecr_repository" "ascep" {
  name                 = "${var.name}/ascep"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "ascep" {
  repository = aws_ecr_repository.ascep.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the 30 newest images (rollbacks reach that far)"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# -- roles ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.ascep.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for key in keys(local.tasks) : "${var.log_group_arns["ecs-${key}"]}:*"]
  }
  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = distinct(flatten([for task in local.secrets : values(task)]))
  }
  statement {
    sid       = "DecryptTheSecretAndTheImage"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "task" {
  for_each           = toset(["dashboard", "connectors", "rules"])
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# The connectors write ticks and trades, and what they cannot parse to deadletter.
data "aws_iam_policy_document" "connectors" {
  statement {
    sid       = "ConnectToMsk"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }
  statement {
    sid       = "WriteTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = [for topic in ["ticks", "trades", "deadletter"] : "${var.msk_topic_arn_prefix}/${topic}"]
  }
}

# `ascep rules` reads and writes the compacted rules topic (add, list, rm), and nothing else.
data "aws_iam_policy_document" "rules" {
  statement {
    sid       = "ConnectToMsk"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }
  statement {
    sid       = "RulesTopic"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData"]
    resources = ["${var.msk_topic_arn_prefix}/rules"]
  }
  statement {
    sid       = "ConsumerGroup"
    actions   = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    resources = ["${var.msk_group_arn_prefix}/ascep-rules-cli"]
  }
}

# The dashboard reads the lake for /analytics (the storage module's read policy), and nothing else.
resource "aws_iam_role_policy_attachment" "dashboard_lake" {
  role       = aws_iam_role.task["dashboard"].name
  policy_arn = var.lake_read_policy_arn
}

resource "aws_iam_role_policy" "task" {
  for_each = {
    connectors = data.aws_iam_policy_document.connectors.json
    rules      = data.aws_iam_policy_document.rules.json
  }
  name   = "ascep-${each.key}"
  role   = aws_iam_role.task[each.key].id
  policy = each.value
}

# -- tasks and services ------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  for_each                 = local.tasks
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.value.role].arn

  volume {
    name = "tmp" # the root file system is read-only; scratch space (matplotlib's cache) goes here
  }

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = local.image
    essential              = true
    command                = each.value.command
    readonlyRootFilesystem = true
    environment = [for key, value in merge(each.value.settings, { AWS_REGION = var.region, TMPDIR = "/tmp", MPLCONFIGDIR = "/tmp" }) : {
      name = key, value = value
    }]
    secrets      = [for name, arn in local.secrets[each.key] : { name = name, valueFrom = arn }]
    mountPoints  = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    portMappings = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names["ecs-${each.key}"]
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

resource "aws_ecs_service" "this" {
  for_each         = local.services
  name             = each.key
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this[each.key].arn
  desired_count    = each.key == "dashboard" ? var.dashboard_count : 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # Two tasks of one connector would send every tick twice: a connector is replaced stop-first.
  deployment_minimum_healthy_percent = each.key == "dashboard" ? 100 : 0
  deployment_maximum_percent         = each.key == "dashboard" ? 200 : 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.security_group_ids[each.value.role]]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.key == "dashboard" ? [1] : []
    content {
      target_group_arn = aws_lb_target_group.dashboard.arn
      container_name   = "dashboard"
      container_port   = var.dashboard_port
    }
  }

  depends_on = [aws_lb_listener.https]
}
