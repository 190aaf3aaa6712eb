"""The Parquet lake (local or S3): one writer the job uses, one reader analytics and the dashboard use."""
