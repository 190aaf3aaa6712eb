# Access to the lake, written once here and attached by the roles that need it (Managed Flink and the
# maintenance Lambda write, the dashboard reads), so the bucket's layout and key live in one module.
locals {
  lake_objects = "${aws_s3_bucket.data["lake"].arn}/${var.lake_prefix}/*"
  lake_access = {
    read  = { objects = ["s3:GetObject"], key = ["kms:Decrypt"] }
    write = { objects = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], key = ["kms:Decrypt", "kms:GenerateDataKey"] }
  }
}

data "aws_iam_policy_document" "lake" {
  for_each = local.lake_access
  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data["lake"].arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.lake_prefix}/*", var.lake_prefix]
    }
  }
  statement {
    sid       = "LakeObjects"
    actions   = each.value.objects
    resources = [local.lake_objects]
  }
  statement {
    sid       = "BucketKey"
    actions   = each.value.key
    resources = [var.kms_key_arn]
    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["s3.*.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "lake" {
  for_each    = local.lake_access
  name        = "${var.name}-lake-${each.key}"
  description = "${title(each.key)} access to the ASCEP lake (s3://${aws_s3_bucket.data["lake"].id}/${var.lake_prefix})."
  policy      = data.aws_iam_policy_document.lake[each.key].json
}
