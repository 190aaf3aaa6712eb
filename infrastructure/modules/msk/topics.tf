# aws_msk_topic (provider 6.38+) creates the topics of main.tf through the MSK API: Terraform needs no
# route to the brokers.

resource "aws_msk_topic" "this" {
  for_each           = local.topics
  name               = each.key
  cluster_arn        = aws_msk_cluster.this.arn
  partition_count    = each.value.partitions
  replication_factor = local.replication_factor
  configs            = jsonencode(merge(each.value.configs, { "min.insync.replicas" = tostring(local.min_insync) }))
}
