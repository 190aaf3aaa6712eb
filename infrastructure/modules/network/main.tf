# A VPC with public subnets for the ALB and the NAT gateways, and private subnets for everything else:
# MSK brokers, ElastiCache, the Managed Flink application's interfaces, the ECS tasks and the Lambda.
# Each part has a security group that opens only the ports the others use to reach it.

locals {
  zones = [for letter in slice(var.zone_letters, 0, var.az_count) : "${var.region}${letter}"]
  # public /24s at the bottom of the range, private /20s above them
  public_cidrs  = [for i in range(var.az_count) : cidrsubnet(var.cidr, 8, i)]
  private_cidrs = [for i in range(var.az_count) : cidrsubnet(var.cidr, 4, i + 1)]
  # a zone without a NAT gateway of its own routes through the last one
  nat_index = [for i in range(var.az_count) : min(i, var.nat_gateways - 1)]
  interface_services = var.interface_endpoints ? toset([
    "ecr.api", "ecr.dkr", "logs", "monitoring", "secretsmanager", "sts",
  ]) : toset([])
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

# No rule at all: nothing uses the default group, and this keeps it from letting anything through.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_flow_log" "this" {
  vpc_id          = aws_vpc.this.id
  traffic_type    = "ALL"
  log_destination = var.flow_log_group_arn
  iam_role_arn    = aws_iam_role.flow_log.arn
}

data "aws_iam_policy_document" "flow_log_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flow_log" {
  name               = "${var.name}-flow-log"
  assume_role_policy = data.aws_iam_policy_document.flow_log_assume.json
}

data "aws_iam_policy_document" "flow_log" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${var.flow_log_group_arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_log" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_log.id
  policy = data.aws_iam_policy_document.flow_log.json
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count             = var.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.public_cidrs[count.index]
  availability_zone = local.zones[count.index]
  tags              = { Name = "${var.name}-public-${local.zones[count.index]}" }
}

resource "aws_subnet" "private" {
  count             = var.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.private_cidrs[count.index]
  availability_zone = local.zones[count.index]
  tags              = { Name = "${var.name}-private-${local.zones[count.index]}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count          = var.az_count
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count  = var.nat_gateways
  domain = "vpc"
  tags   = { Name = "${var.name}-nat-${count.index}" }
}

resource "aws_nat_gateway" "this" {
  count         = var.nat_gateways
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${var.name}-${count.index}" }
  depends_on    = [aws_internet_gateway.this]
}

resource "aws_route_table" "private" {
  count  = var.az_count
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-private-${local.zones[count.index]}" }
}

resource "aws_route" "private_nat" {
  count                  = var.az_count
  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[local.nat_index[count.index]].id
}

resource "aws_route_table_association" "private" {
  count          = var.az_count
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
  tags              = { Name = "${var.name}-s3" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = local.interface_services
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.this["endpoints"].id]
  private_dns_enabled = true
  tags                = { Name = "${var.name}-${each.key}" }
}

data "aws_ec2_managed_prefix_list" "s3" {
  name = "com.amazonaws.${var.region}.s3"
}

# The parts, and what each lets in and out. Ports: 443 HTTPS, 9098 MSK with IAM authentication,
# 6379 ElastiCache, 5432 the dashboard's PostgreSQL; the connectors reach the venues' WebSockets on 443 and 9443 (Binance). A rule names
# the other side by group (`peer`), by address range (`cidr`), or as S3's prefix list (`s3`).
locals {
  groups = {
    alb         = "the dashboard's load balancer"
    dashboard   = "the dashboard's ECS tasks"
    connectors  = "the live connectors' ECS tasks"
    flink       = "the Managed Flink application"
    msk         = "the MSK brokers"
    redis       = "ElastiCache"
    database    = "the dashboard's PostgreSQL (RDS)"
    maintenance = "the maintenance Lambda"
    endpoints   = "the interface VPC endpoints"
  }
  # AWS APIs (ECR, logs, Secrets Manager, STS): through the interface endpoints when there are some,
  # else through the NAT gateways
  api_peer = var.interface_endpoints ? "endpoints" : null
  api_cidr = var.interface_endpoints ? null : "0.0.0.0/0"
  ingress = merge(
    { for i, cidr in var.dashboard_ingress_cidrs : "alb_https_${i}" => { group = "alb", port = 443, peer = null, cidr = cidr } },
    {
      dashboard_from_alb = { group = "dashboard", port = var.dashboard_port, peer = "alb", cidr = null }
      msk_connectors     = { group = "msk", port = 9098, peer = "connectors", cidr = null }
      msk_flink          = { group = "msk", port = 9098, peer = "flink", cidr = null }
      redis_dashboard    = { group = "redis", port = 6379, peer = "dashboard", cidr = null }
      database_dashboard = { group = "database", port = 5432, peer = "dashboard", cidr = null }
      redis_connectors   = { group = "redis", port = 6379, peer = "connectors", cidr = null }
      redis_flink        = { group = "redis", port = 6379, peer = "flink", cidr = null }
      redis_maintenance  = { group = "redis", port = 6379, peer = "maintenance", cidr = null }
      endpoints_vpc      = { group = "endpoints", port = 443, peer = null, cidr = var.cidr }
    },
  )
  egress = {
    alb_dashboard      = { group = "alb", port = var.dashboard_port, peer = "dashboard", cidr = null, s3 = false }
    dashboard_redis    = { group = "dashboard", port = 6379, peer = "redis", cidr = null, s3 = false }
    dashboard_database = { group = "dashboard", port = 5432, peer = "database", cidr = null, s3 = false }
    dashboard_s3       = { group = "dashboard", port = 443, peer = null, cidr = null, s3 = true }
    dashboard_apis     = { group = "dashboard", port = 443, peer = local.api_peer, cidr = local.api_cidr, s3 = false }
    connectors_msk     = { group = "connectors", port = 9098, peer = "msk", cidr = null, s3 = false }
    connectors_redis   = { group = "connectors", port = 6379, peer = "redis", cidr = null, s3 = false }
    connectors_https   = { group = "connectors", port = 443, peer = null, cidr = "0.0.0.0/0", s3 = false }
    connectors_binance = { group = "connectors", port = 9443, peer = null, cidr = "0.0.0.0/0", s3 = false }
    flink_msk          = { group = "flink", port = 9098, peer = "msk", cidr = null, s3 = false }
    flink_redis        = { group = "flink", port = 6379, peer = "redis", cidr = null, s3 = false }
    flink_s3           = { group = "flink", port = 443, peer = null, cidr = null, s3 = true }
    maintenance_redis  = { group = "maintenance", port = 6379, peer = "redis", cidr = null, s3 = false }
    # the Managed Flink API, which has no endpoint here, and CloudWatch and Secrets Manager (their endpoints,
    # or the NAT)
    maintenance_https = { group = "maintenance", port = 443, peer = null, cidr = "0.0.0.0/0", s3 = false }
  }
}

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:each group is attached in the module of its part (msk, elasticache, flink, ecs, maintenance), through this module's outputs, which checkov does not follow
  for_each    = local.groups
  name        = "${var.name}-${each.key}"
  description = "${var.name}: ${each.value}"
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-${each.key}" }
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each                     = local.ingress
  security_group_id            = aws_security_group.this[each.value.group].id
  description                  = each.key
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = each.value.peer == null ? null : aws_security_group.this[each.value.peer].id
  cidr_ipv4                    = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each                     = local.egress
  security_group_id            = aws_security_group.this[each.value.group].id
  description                  = each.key
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  referenced_security_group_id = each.value.peer == null ? null : aws_security_group.this[each.value.peer].id
  cidr_ipv4                    = each.value.cidr
  prefix_list_id               = each.value.s3 ? data.aws_ec2_managed_prefix_list.s3.id : null
}
