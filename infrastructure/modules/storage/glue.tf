# Athena over the lake: the schemas of lake/layout.py (TICK_SCHEMA, TRADE_SCHEMA, SIGNAL_SCHEMA) and its Hive
# directories
#   <lake>/ticks/dt=YYYY-MM-DD/hour=HH/venue=V/part-....parquet
#   <lake>/trades/dt=YYYY-MM-DD/hour=HH/venue=V/part-....parquet
#   <lake>/signals/dt=YYYY-MM-DD/hour=HH/part-....parquet
# Partitions are projected from those paths, so no crawler or MSCK REPAIR is needed as hours go by. The
# venue is a column of the files too; Athena takes it from the path (a partition key cannot also be a
# column). Only *.parquet under ticks/, trades/ and signals/ is data; _ranges/ is the writer's bookkeeping.

locals {
  database = replace(var.name, "-", "_")
  lake_uri = "s3://${aws_s3_bucket.data["lake"].id}/${var.lake_prefix}"
  lineage = [
    { name = "kafka_partition", type = "int" },
    { name = "kafka_offset", type = "bigint" },
  ]
  tables = {
    ticks = {
      description = "One row per tick (docs/lake.md, Schemas)."
      columns = [
        { name = "symbol", type = "string" },
        { name = "bid", type = "double" },
        { name = "ask", type = "double" },
        { name = "bid_size", type = "double" },
        { name = "ask_size", type = "double" },
        { name = "ts", type = "bigint" },
        { name = "bids", type = "array<array<double>>" }, # [[price, size], ...], best first, when a book came
        { name = "asks", type = "array<array<double>>" },
      ]
      partitions = ["dt", "hour", "venue"]
    }
    trades = {
      description = "One row per trade (docs/lake.md, Schemas)."
      columns = [
        { name = "symbol", type = "string" },
        { name = "price", type = "double" },
        { name = "size", type = "double" },
        { name = "side", type = "string" }, # the taker's, buy or sell, when the venue says
        { name = "ts", type = "bigint" },
        { name = "trade_id", type = "string" },
      ]
      partitions = ["dt", "hour", "venue"]
    }
    signals = {
      description = "One row per state of a signal: open, each new peak, close (docs/lake.md, Schemas)."
      columns = [
        { name = "id", type = "string" },
        { name = "type", type = "string" },
        { name = "status", type = "string" },
        { name = "symbol", type = "string" },
        { name = "buy_venue", type = "string" },
        { name = "sell_venue", type = "string" },
        { name = "profit_bps", type = "double" },
        { name = "size", type = "double" },
        { name = "event_time", type = "bigint" },
        { name = "updated_at", type = "bigint" },
        { name = "detected_at", type = "bigint" },
        { name = "closed_at", type = "bigint" },
        { name = "duration_ms", type = "bigint" },
        { name = "rule_id", type = "string" },
        { name = "legs", type = "array<struct<venue:string,symbol:string,side:string,price:double,vwap:double>>" },
      ]
      partitions = ["dt", "hour"]
    }
  }
  projection = {
    "projection.dt.type"          = "date"
    "projection.dt.format"        = "yyyy-MM-dd"
    "projection.dt.range"         = "${var.first_day},NOW"
    "projection.dt.interval"      = "1"
    "projection.dt.interval.unit" = "DAYS"
    "projection.hour.type"        = "integer"
    "projection.hour.range"       = "0,23"
    "projection.hour.digits"      = "2"
    "projection.venue.type"       = "enum"
    "projection.venue.values"     = join(",", var.venues)
  }
}

resource "aws_glue_catalog_database" "lake" {
  name        = local.database
  description = "${var.name}: the Parquet lake"
}

resource "aws_glue_catalog_table" "lake" {
  for_each      = local.tables
  name          = each.key
  database_name = aws_glue_catalog_database.lake.name
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    {
      EXTERNAL                    = "TRUE"
      classification              = "parquet"
      "parquet.compression"       = "ZSTD"
      "projection.enabled"        = "true"
      "storage.location.template" = "${local.lake_uri}/${each.key}/${join("/", [for key in each.value.partitions : "${key}=$${${key}}"])}"
    },
    { for key, value in local.projection : key => value if contains(each.value.partitions, split(".", key)[1]) },
  )

  dynamic "partition_keys" {
    for_each = each.value.partitions
    content {
      name = partition_keys.value
      type = "string"
    }
  }

  storage_descriptor {
    location      = "${local.lake_uri}/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }
    dynamic "columns" {
      for_each = concat(each.value.columns, local.lineage) # where each row was read in Kafka
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}

resource "aws_athena_workgroup" "lake" {
  name = var.name
  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    result_configuration {
      output_location = "s3://${aws_s3_bucket.data["lake"].id}/athena-results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }
}
