"""One typed settings object for the whole product.

Sources, strongest first: keyword arguments, environment variables prefixed ``ASCEP_`` (nested
fields joined with ``__``, e.g. ``ASCEP_ARBITRAGE__MIN_PROFIT_BPS=2``), then the TOML file named
by ``ASCEP_CONFIG`` (or ``--config``), then the defaults below. docs/configuration.md lists them.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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
    tick_range: int = 131_072  # Kafka offsets per tick (and trade) object (objects are named by aligned offset ranges)
    signal_range: int = 1_048_576
    row_group_rows: int = 131_072
    analytics_gap_seconds: float = 10.0  # no tick from a venue for this long counts as a gap
    # The archivers' fetch wait (see job.fetch_wait_ms): they flush every flush_every_s, so latency is not theirs.
    fetch_wait_ms: int = Field(default=500, ge=1, le=5_000)


class RateLimit(NamedTuple):
    """At most `requests` in a window of `per_s` seconds that starts with the first of them."""

    requests: int
    per_s: int

    def __str__(self) -> str:
        return f"{self.requests}/{self.per_s}s"


def _rate_limit(value: Any) -> Any:
    """"10/60s" (or "10/60"): what the environment and the TOML file give; a RateLimit or a pair passes as is."""
    if not isinstance(value, str):
        return value
    count, slash, seconds = value.strip().removesuffix("s").partition("/")
    if not (slash and count.strip().isdigit() and seconds.strip().isdigit()):
        raise ValueError(f"{value!r} is not REQUESTS/SECONDS, e.g. 10/60s")
    return RateLimit(int(count), int(seconds))


def _positive(rate: RateLimit) -> RateLimit:
    if rate.requests < 1 or rate.per_s < 1:
        raise ValueError(f"{rate}: the requests and the seconds must both be at least 1")
    return rate


# NoDecode: the environment gives "10/60s", which is no JSON (pydantic-settings decodes tuples from JSON).
Rate = Annotated[RateLimit, NoDecode, BeforeValidator(_rate_limit), AfterValidator(_positive), PlainSerializer(str)]


class RateLimits(BaseModel):
    """Requests per window, counted in Redis so that every dashboard process shares them (docs/configuration.md,
    "Accounts"): per client address for login, per user otherwise (per client address for anonymous visitors)."""

    model_config = {"extra": "forbid"}

    login: Rate = RateLimit(10, 60)  # POSTs to /accounts/login
    rule_write: Rate = RateLimit(60, 60)  # rule writes (create, replace, delete, check)
    rule_test: Rate = RateLimit(30, 60)  # POST /api/rules/<id>/test
    backtest: Rate = RateLimit(10, 60)  # POST /api/rules/<id>/backtest


def _origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{value!r} is not an origin: scheme://host[:port], e.g. https://ops.example.com")
    return f"{parts.scheme}://{parts.netloc}"


class DashboardSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # The job's checkpoint folder, for /api/health's newest checkpoint (`ascep up` passes it); None: "unknown".
    checkpoints: Path | None = None
    # Accounts, sessions and API tokens live here: a dj-database-url URL (postgres://user:pass@host/db, ...);
    # None: SQLite in <state_dir>/dashboard.sqlite3.
    database_url: SecretStr | None = None
    # Signs sessions and CSRF tokens; None: a key made once and kept in <state_dir>/dashboard-secret-key. Every
    # process behind one address needs the same key (and database), or a login holds on one of them only.
    secret_key: SecretStr | None = None
    # May visitors who are not logged in read (pages, API reads, the live socket)? None: `ascep up` allows it
    # when the dashboard listens on a loopback address only; anything else (`ascep dashboard`, a deployment) not.
    anonymous_read: bool | None = None
    # Other origins whose pages may call the API from a browser (CORS), e.g. ["https://ops.example.com"].
    cors_origins: list[Annotated[str, AfterValidator(_origin)]] = Field(default_factory=list)
    # Reached over HTTPS (here or at a proxy): cookies only over TLS, and HSTS.
    https: bool = False
    # Reverse proxies in front (a load balancer: 1) whose X-Forwarded-For and X-Forwarded-Proto are believed;
    # the client's address is then the one the outermost of them saw. 0: the peer of the connection.
    proxy_count: int = Field(default=0, ge=0)
    rate_limits: RateLimits = Field(default_factory=RateLimits)


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
    # POST /api/rules/<id>/backtest reads at most this much of the lake's time (under the two limits above too).
    trial_max_minutes: int = Field(default=24 * 60, ge=1)


KAFKA_SECURITY_ENV = "ASCEP_KAFKA_SECURITY__"


class KafkaSecuritySettings(BaseModel):
    """How every Kafka client connects (docs/configuration.md, "Kafka security"); clients.kafka turns it into
    librdkafka options. The errors name the environment variables: that is how deployments set these."""

    model_config = {"extra": "forbid"}

    protocol: Literal["plaintext", "ssl", "sasl_ssl"] = "plaintext"
    sasl_mechanism: Literal["SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    msk_iam_region: str | None = None  # with OAUTHBEARER: tokens from the MSK IAM signer, for this AWS region
    sasl_username: str | None = None  # SCRAM
    sasl_password: SecretStr | None = None  # SCRAM; never printed by `ascep config`
    ca_file: Path | None = None  # a private CA for ssl / sasl_ssl; None: the system's CAs

    @field_validator("protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _known(cls, value: Any, info: Any) -> Any:
        """Case-insensitive (MSK's documents write SASL_SSL), with the choices named in the error."""
        if not isinstance(value, str):
            return value
        choices = {"protocol": ("plaintext", "ssl", "sasl_ssl"),
                   "sasl_mechanism": ("SCRAM-SHA-512", "OAUTHBEARER")}[info.field_name]
        found = next((choice for choice in choices if choice.lower() == value.lower()), None)
        if found is None:
            raise ValueError(f"{KAFKA_SECURITY_ENV}{info.field_name.upper()}={value!r} is not one of "
                             f"{', '.join(choices)}")
        return found

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        env = KAFKA_SECURITY_ENV
        sasl = self.protocol == "sasl_ssl"
        scram = self.sasl_mechanism == "SCRAM-SHA-512"
        oauth = self.sasl_mechanism == "OAUTHBEARER"
        problems = [
            (sasl and self.sasl_mechanism is None, f"{env}PROTOCOL=sasl_ssl needs {env}SASL_MECHANISM "
                                                   f"(SCRAM-SHA-512 or OAUTHBEARER)"),
            (not sasl and self.sasl_mechanism is not None, f"{env}SASL_MECHANISM is set but {env}PROTOCOL is "
                                                            f"{self.protocol}, not sasl_ssl"),
            (oauth and not self.msk_iam_region, f"{env}SASL_MECHANISM=OAUTHBEARER needs {env}MSK_IAM_REGION "
                                                f"(the MSK cluster's AWS region): its tokens come from MSK IAM"),
            (not oauth and self.msk_iam_region is not None, f"{env}MSK_IAM_REGION is set but {env}SASL_MECHANISM "
                                                            f"is not OAUTHBEARER"),
            (scram and not self.sasl_username, f"{env}SASL_MECHANISM=SCRAM-SHA-512 needs {env}SASL_USERNAME"),
            (scram and (self.sasl_password is None or not self.sasl_password.get_secret_value()),
             f"{env}SASL_MECHANISM=SCRAM-SHA-512 needs {env}SASL_PASSWORD"),
            (not scram and (self.sasl_username is not None or self.sasl_password is not None),
             f"{env}SASL_USERNAME and {env}SASL_PASSWORD are for SCRAM-SHA-512 only"),
            (self.protocol == "plaintext" and self.ca_file is not None,
             f"{env}CA_FILE is set but {env}PROTOCOL is plaintext"),
        ]
        wrong = [message for failed, message in problems if failed]
        if wrong:
            raise ValueError("; ".join(wrong))
        return self


class Settings(BaseSettings):
    """Every external service can be given by address; None means `ascep up` starts an embedded one."""

    # An error names the setting and why, without its input: that may hold the Kafka password or Redis's token.
    model_config = SettingsConfigDict(env_prefix="ASCEP_", env_nested_delimiter="__", extra="forbid",
                                      hide_input_in_errors=True)

    kafka: str | None = None  # bootstrap servers, host:port[,host:port]
    redis: str | None = None  # redis://host:port/db, or rediss://:TOKEN@host:port/db for TLS with an auth token
    redis_ca_file: Path | None = None  # a private CA for rediss:// (core.stack_file.resolve adds it to the URL)
    kafka_security: KafkaSecuritySettings = Field(default_factory=KafkaSecuritySettings)
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

    @model_validator(mode="after")
    def _redis_ca_with_tls(self) -> Settings:
        if self.redis_ca_file is not None and self.redis is not None and not self.redis.startswith("rediss://"):
            raise ValueError("ASCEP_REDIS_CA_FILE is set but ASCEP_REDIS is not a rediss:// (TLS) URL")
        return self

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


class UnknownSetting(ValueError):
    """An ASCEP_* name that sets no field of Settings."""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((found for arg in get_args(annotation) if (found := _model_in(arg)) is not None), None)


def check_env_name(name: str) -> None:
    """Raises UnknownSetting unless the environment variable `name` sets a field of Settings (a key of a map
    field included: ASCEP_ARBITRAGE__TAKER_FEES_BPS__KRAKEN). Environment variables nobody reads are ignored
    by pydantic, so a deployment that passes settings by name (Managed Flink's properties, ECS) checks them
    here rather than run with a misspelt one silently left at its default."""
    if not name.upper().startswith("ASCEP_"):
        raise UnknownSetting(f"{name}: not a setting (settings are named ASCEP_...)")
    model: type[BaseModel] | None = Settings
    parts = name[len("ASCEP_"):].lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            raise UnknownSetting(f"{name}: {part!r} is not a setting" + (
                f" of {'.'.join(parts[:i])}" if i else "") + " (docs/configuration.md lists them)")
        model = _model_in(field.annotation)
        if model is None:
            is_map = get_origin(field.annotation) is dict
            if len(parts) - i - 1 > (1 if is_map else 0):
                raise UnknownSetting(f"{name}: {'.'.join(parts[:i + 1])} has no field {parts[i + 1]!r}")
            return
    if model is not None:
        raise UnknownSetting(f"{name}: {'.'.join(parts)} is a group of settings; name one of its fields "
                             f"({', '.join(model.model_fields)}) or give the group as JSON")


SettingPath = tuple[str, ...]


def setting_paths(model: type[BaseModel] = Settings, prefix: SettingPath = ()) -> list[SettingPath]:
    """Every setting that holds a value (a number, a string, a list, a map), as its path of field names."""
    paths: list[SettingPath] = []
    for name, field in model.model_fields.items():
        group = _model_in(field.annotation)
        paths += setting_paths(group, (*prefix, name)) if group is not None else [(*prefix, name)]
    return paths


def env_name(path: SettingPath) -> str:
    return "ASCEP_" + "__".join(path).upper()


def _holds(tree: Any, path: SettingPath) -> bool:
    for name in path:
        if not isinstance(tree, dict) or name not in tree:
            return False
        tree = tree[name]
    return True


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def setting_source(path: SettingPath, env: Mapping[str, str], file_values: Mapping[str, Any]) -> str | None:
    """Which source gave the setting at `path` its value, strongest first as Settings reads them: the environment
    variable that sets it (itself, a key of its map, or a group of settings given as JSON: ASCEP_JOB='{...}'),
    "file" (the TOML file's values, `file_values`), or None for its default. Names are case-insensitive."""
    names = {name.upper(): value for name, value in env.items()}
    own = env_name(path)
    if own in names:
        return own
    keys = sorted(name for name in names if name.startswith(own + "__"))
    if keys:
        return ", ".join(keys)
    for depth in range(len(path) - 1, 0, -1):
        group = env_name(path[:depth])
        if group in names and _holds(_json_or_none(names[group]), path[depth:]):
            return group
    return "file" if _holds(file_values, path) else None


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    if config_file:
        os.environ["ASCEP_CONFIG"] = config_file
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
