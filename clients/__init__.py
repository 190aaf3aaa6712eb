"""How every process reaches Kafka: the settings turned into client configuration, in one place.

Below the shells (flink_jobs, ingestion, dashboard) and beside the lake, so that each of them builds
its clients the same way; not in core, because MSK IAM's token callback fetches AWS credentials.
"""
