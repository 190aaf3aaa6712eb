"""One typed settings object for the whole product.

Sources, strongest first: keyword arguments, environment variables prefixed ``ASCEP_`` (nested
fields joined with ``__``, e.g. ``ASCEP_ARBITRAGE__MIN_PROFIT_BPS=2``), then the TOML file named
by ``ASCEP_CONFIG`` (or ``--config``), then the defaults below. docs/configuration.md lists them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

# Taker fees at the entry tier of each venue's public schedule, in basis points.
DEFAULT_TAKER_FEES_BPS = {
    "binance": 10.0,
    "binance_us": 10.0,
    "coinbase": 60.0,
    "kraken": 40.0,
    "okx": 10.0,
    "gemini": 40.0,
    "bybit": 10.0,
    "bitstamp": 40.0,
    "fx_ecn": 0.25,  # FX ECNs charge a commission of a few dollars per million traded
    "fx_dealer": 0.0,  # a dealer's cost is in its spread
}


class DetectionSettings(BaseModel):
    """Overrides for one detector; a field left None falls back to the same field of ArbitrageSettings."""

    model_config = {"extra": "forbid"}

    min_profit_bps: float | None = None
    max_quote_age_ms: int | None = Field(default=None, ge=0)
    min_size: float | None = Field(default=None, ge=0)
    min_notional: float | None = Field(default=None, ge=0)


class Thresholds(NamedTuple):
    """What one detector enforces, fallbacks resolved: a tuple so the per-tick path reads plain attributes."""

    min_profit_bps: float
    max_quote_age_ms: int
    min_size: float  # in the signal's size unit; applies only when sizes are known
    min_notional: float  # first leg's quote currency; applies only when sizes are known


DetectionType = Literal["cross_exchange", "direct", "triangular"]


class ArbitrageSettings(BaseModel):
    taker_fees_bps: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_TAKER_FEES_BPS))
    default_taker_fee_bps: float = 10.0  # for a venue not in taker_fees_bps
    min_profit_bps: float = 1.0  # net of fees; an opportunity must beat this to open
    max_quote_age_ms: int = 2_000  # event time, relative to the newest quote of the detector's key
    min_size: float = Field(default=0.0, ge=0)
    min_notional: float = Field(default=0.0, ge=0)
    cross_exchange: DetectionSettings = Field(default_factory=DetectionSettings)
    direct: DetectionSettings = Field(default_factory=DetectionSettings)
    triangular: DetectionSettings = Field(default_factory=DetectionSettings)

    def fee(self, venue: str) -> float:
        return self.taker_fees_bps.get(venue, self.default_taker_fee_bps) / 10_000.0

    def thresholds(self, detection: DetectionType) -> Thresholds:
        own: DetectionSettings = getattr(self, detection)
        return Thresholds(*(getattr(self, name) if getattr(own, name) is None else getattr(own, name)
                            for name in Thresholds._fields))


class JobSettings(BaseModel):
    # Partitions of ticks/trades/signals when created here. With one, every detector runs in the tick reader
    # (fastest); with more, triangular, direct and rule detection run in detection_buckets keyed buckets that
    # merge the partitions in event-time order, so the signals are the same either way (docs/scaling.md).
    partitions: int = 1
    parallelism: int = 1
    checkpoint_interval_ms: int = 2_000
    poll_batch: int = 5_000  # most records read from Kafka per poll of one partition
    pulse_per_second: int = 200  # how often each partition is polled when it is idle
    # How long the broker may hold a fetch of the job's readers when no data waits. A real Kafka broker answers
    # as soon as data arrives, whatever this is; the embedded Tansu broker answers after about this long and
    # lists every batch of the partition on each fetch, so a short wait makes its CPU grow with its age until
    # reads stall (docs/configuration.md).
    fetch_wait_ms: int = Field(default=50, ge=1, le=1_000)
    # A tick dated more than this after its Kafka record was written is dead-lettered by the job's reader:
    # clocks differ by a little, but one tick dated 2100 would otherwise push every watermark past all later ticks.
    max_future_skew_ms: int = Field(default=5_000, ge=0)
    execution_mode: str = "thread"  # Flink Python execution mode: thread or process
    # Event-time order (core/event_order.py): a tick up to this far out of order in its partition keeps its
    # true place; every tick waits about this long more before triangular, direct and rule detection see it.
    out_of_orderness_ms: int = Field(default=0, ge=0)
    # 0: a partition holds the others back until its watermark moves (producers write watermark records into
    # the partitions they leave quiet), which keeps the signals independent of timing. Otherwise a partition
    # whose event time trails the newest by more than this stops holding them back: for producers that write
    # no watermark records, at the cost of that guarantee (docs/scaling.md).
    idle_after_ms: int = Field(default=0, ge=0)
    # Keyed buckets for triangular, direct and rule detection with several partitions; fixed for the life of
    # a checkpoint (the state is keyed by bucket), and the most parallelism they can use.
    detection_buckets: int = Field(default=4, ge=1)
    # What runs downstream of the tick reader (cross-exchange detection always runs in the reader).
    detectors: list[str] = Field(default_factory=lambda: ["triangular", "direct", "rules"])


class LakeSettings(BaseModel):
    """The Parquet lake (docs/lake.md): where it is comes from Settings.lake (a directory or s3://bucket/prefix)."""

    flush_every_s: float = 10.0  # how often the archiver makes what it read durable (and advances its offset)
    tick_range: int = 131_072  # Kafka offsets per tick object (objects are named by aligned offset ranges)
    signal_range: int = 1_048_576
    row_group_rows: int = 131_072
    analytics_gap_seconds: float = 10.0  # no tick from a venue for this long counts as a gap
    # The archivers' fetch wait (see job.fetch_wait_ms): they flush every flush_every_s, so latency is not theirs.
    fetch_wait_ms: int = Field(default=500, ge=1, le=5_000)


class DashboardSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # The job's checkpoint folder, for /api/health's newest checkpoint (`ascep up` passes it); None: "unknown".
    checkpoints: Path | None = None


class HealthSettings(BaseModel):
    """When /api/health stops saying "ok" (docs/configuration.md, "Health")."""

    model_config = {"extra": "forbid"}

    # The tick reader has records waiting and has not moved for this long: the job is stalled ("down", 503).
    stall_after_s: float = Field(default=15.0, gt=0)
    # The same for the lake archivers, which move only when they flush (lake_options.flush_every_s): "degraded".
    lake_stall_after_s: float = Field(default=60.0, gt=0)
    # A venue's newest tick (event time) or a connector's last frame older than this: "degraded".
    max_data_age_s: float = Field(default=60.0, gt=0)
    # No checkpoint completed for this long while the job runs: "degraded".
    max_checkpoint_age_s: float = Field(default=120.0, gt=0)


class RuleSettings(BaseModel):
    """Bounds on what one rule may hold and a trial may spend (docs/rules.md, "Bounded state")."""

    model_config = {"extra": "forbid"}

    # Partial matches one pattern NFA keeps (one per rule, one per key of a partitioned rule); past it, the oldest go.
    max_partial_matches: int = Field(default=10_000, ge=1)
    # Events those partial matches hold (each once, however many share it): bounds a long loop's chain too.
    max_events_held: int = Field(default=100_000, ge=1)
    # `ascep rules test` and POST /api/rules/<id>/test stop after this much time, or past this many signals (a
    # FOLLOWED BY ANY match per partial match per tick: 1.75 GB in 27 s), with an error naming the limit.
    trial_time_budget_ms: int = Field(default=10_000, ge=1)
    trial_max_signals: int = Field(default=100_000, ge=1)


class Settings(BaseSettings):
    """Every external service can be given by address; None means `ascep up` starts an embedded one."""

    model_config = SettingsConfigDict(env_prefix="ASCEP_", env_nested_delimiter="__", extra="forbid")

    kafka: str | None = None  # bootstrap servers, host:port[,host:port]
    redis: str | None = None  # redis://host:port/db
    flink: str | None = None  # JobManager REST address host:port; None runs the local MiniCluster
    s3_endpoint: str | None = None  # for MinIO and other S3-compatible services
    lake: str | None = None  # local directory or s3://bucket/prefix for Parquet
    state_dir: Path = Path(".ascep")  # where `ascep up` leaves its addresses for other commands

    arbitrage: ArbitrageSettings = Field(default_factory=ArbitrageSettings)
    job: JobSettings = Field(default_factory=JobSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    lake_options: LakeSettings = Field(default_factory=LakeSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("ASCEP_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"ASCEP_CONFIG names {config_file!r}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    if config_file:
        os.environ["ASCEP_CONFIG"] = config_file
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
