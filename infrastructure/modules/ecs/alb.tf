# HTTPS in front of the dashboard. Its live page holds a WebSocket open: the idle timeout is 300 s instead
# of the default 60, so a quiet connection (no signal for a minute) is not cut.

resource "aws_lb" "dashboard" {
  name                       = "${var.name}-dashboard"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [var.security_group_ids["alb"]]
  idle_timeout               = 300
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = var.logs_bucket
    prefix  = "alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "dashboard" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; from there to the task the traffic stays in the VPC's private subnets, and the dashboard serves plain HTTP
  name                 = "${var.name}-dashboard"
  port                 = var.dashboard_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 60

  # /api/ping answers whenever the process serves, without credentials (reading needs them); /api/health
  # would take the dashboard out of service whenever the job is down, which is when it is needed most
  health_check {
    path                = "/api/ping"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.dashboard.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dashboard.arn
  }
}

# AWS's common, known-bad-inputs and anonymous-IP rules; the 8 KB body limit only counts, since
# POST /api/rules/<id>/test sends ticks in its body.
resource "aws_wafv2_web_acl" "dashboard" {
  name  = "${var.name}-dashboard"
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "anonymous-ip"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"
        # cloud-hosted VPNs and offices are ordinary users of a dashboard: counted, not blocked
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-dashboard"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "dashboard" {
  resource_arn = aws_lb.dashboard.arn
  web_acl_arn  = aws_wafv2_web_acl.dashboard.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "dashboard" {
  resource_arn            = aws_wafv2_web_acl.dashboard.arn
  log_destination_configs = [var.log_group_arns["waf"]]
}
