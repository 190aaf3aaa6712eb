"""Where signals and prices leave the job: Redis (live) and Parquet (history)."""
