# Three buckets: the Parquet lake, the artifacts (the application zip and the Lambda's package), and the
# access logs of both and of the ALB. All private, versioned, TLS-only. Athena reads the lake through
# Glue tables whose partitions are projected from the Hive layout (docs/lake.md, "Layout").

data "aws_caller_identity" "current" {}

data "aws_elb_service_account" "this" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  data_buckets = {
    lake      = "${var.name}-lake-${local.account_id}"
    artifacts = "${var.name}-artifacts-${local.account_id}"
  }
}

# -- the lake and the artifacts: SSE-KMS with a bucket key, access logs to the log bucket ------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:one region is enough here; a replication configuration can be added later, at twice the storage cost
  #checkov:skip=CKV2_AWS_62:nothing consumes the buckets' events (the maintenance Lambda runs on a schedule)
  for_each = local.data_buckets
  bucket   = each.value
}

resource "aws_s3_bucket_public_access_block" "data" {
  for_each                = local.data_buckets
  bucket                  = aws_s3_bucket.data[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "data" {
  for_each = local.data_buckets
  bucket   = aws_s3_bucket.data[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "data" {
  for_each = local.data_buckets
  bucket   = aws_s3_bucket.data[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  for_each = local.data_buckets
  bucket   = aws_s3_bucket.data[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "data" {
  for_each      = local.data_buckets
  bucket        = aws_s3_bucket.data[each.key].id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${each.key}/"
}

# -- the access logs of both and of the ALB -------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log bucket; logging its own accesses into itself would loop
  #checkov:skip=CKV_AWS_145:S3 server access logs and ALB access logs are delivered only to SSE-S3 buckets
  #checkov:skip=CKV_AWS_144:access logs are kept 90 days in one region; replicating them adds cost and no use
  #checkov:skip=CKV2_AWS_62:nothing consumes the log bucket's events
  bucket = "${var.name}-access-logs-${local.account_id}"
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.data["lake"].id

  dynamic "rule" {
    for_each = toset(["ticks", "signals"])
    content {
      id     = "${rule.value}-tiering"
      status = "Enabled"
      filter {
        and {
          prefix                   = "${var.lake_prefix}/${rule.value}/"
          object_size_greater_than = 131071 # STANDARD_IA bills 128 KiB at least
        }
      }
      transition {
        days          = var.infrequent_access_days
        storage_class = "STANDARD_IA"
      }
      transition {
        days          = var.glacier_ir_days
        storage_class = "GLACIER_IR"
      }
    }
  }

  rule {
    id     = "versions-and-uploads"
    status = "Enabled"
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = var.lake_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
    dynamic "expiration" {
      for_each = var.lake_expiration_days == null ? [] : [var.lake_expiration_days]
      content {
        days = expiration.value
      }
    }
  }

  rule {
    id     = "athena-results"
    status = "Enabled"
    filter {
      prefix = "athena-results/"
    }
    expiration {
      days = 30
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.data["artifacts"].id
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {
      prefix = ""
    }
    noncurrent_version_expiration {
      noncurrent_days = var.artifact_noncurrent_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    filter {
      prefix = ""
    }
    expiration {
      days = var.access_log_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

locals {
  # TLS only, for every bucket
  buckets = merge({ for key, bucket in aws_s3_bucket.data : key => bucket.arn }, { logs = aws_s3_bucket.logs.arn })
}

data "aws_iam_policy_document" "bucket" {
  for_each = local.buckets

  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []
    content {
      sid       = "S3ServerAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["${each.value}/s3/*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []
    content {
      sid       = "AlbAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["${each.value}/alb/AWSLogs/${local.account_id}/*"]
      principals {
        type        = "AWS"
        identifiers = [data.aws_elb_service_account.this.arn]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  for_each   = local.data_buckets
  bucket     = aws_s3_bucket.data[each.key].id
  policy     = data.aws_iam_policy_document.bucket[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.data]
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.bucket["logs"].json
  depends_on = [aws_s3_bucket_public_access_block.logs]
}
