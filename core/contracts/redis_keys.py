"""Every Redis key ASCEP uses, in one place: the job writes them, the dashboard reads them.

| key | type | holds |
|---|---|---|
| ascep:signal:<id> | string (JSON) | the latest state of one signal |
| ascep:signals | sorted set | signal ids scored by event_time (newest = highest); the newest 10,000 are kept |
| ascep:signals:stream | stream (bounded) | every signal write, for consumers that tail |
| ascep:price:<venue>:<symbol> | string (JSON) | the latest tick of that venue and symbol |
| ascep:prices | set | the venue:symbol pairs with a price |
| ascep:counters | hash | running counters (ticks, deadletters, signals by type) |
| ascep:rules:stats | hash | rule id -> JSON counters: evaluations, matches, errors, time spent, version |
| ascep:rules:in_force | hash | rule id -> the rule's JSON as published, for every rule the job took in force |
| ascep:ingest:<venue> | hash (expires) | the latest metrics snapshot of that venue's connector |
| ascep:job | hash | `started_at` (epoch ms) of the running job's sink: `ascep up` waits for it |
| ascep:progress | hash | `<stage>:<topic>:<partition>` -> JSON `{"next", "advanced_at", "polled_at"}` (below) |
| ascep:topic:ends | hash | `<topic>:<partition>` -> offset after the newest record producers had acknowledged |
| ascep:latency:<writer> | hash (expires) | stage -> JSON histogram of a writer's latencies in the last minute (below) |
| ascep:live | pub/sub channel | every price and signal update, for the dashboard (below) |
| ascep:ratelimit:<name>:<who> | string (expires) | the dashboard's count of one rate limit's requests in its window |

`ascep:progress` says where each of the job's readers is, per stage: `read` (the tick reader), `rules`
(the rules reader), `lake` (the two archivers, whose `next` is the offset up to which the lake is
durable). `next` is the offset the reader reads next (0 before its first record), `advanced_at` the
epoch ms it last moved, `polled_at` the epoch ms of its latest poll. Readers write it about once a
second, at once on their first poll and when they move after a pause (core/progress.py).
`ascep:topic:ends` is written by the producers from their delivery reports (the embedded broker's
watermarks are unreliable) with RAISE_ENDS, so it is raised, never lowered. `ascep up` deletes both
when it starts an embedded broker: offsets start again at 0 there. Besides the dashboard's health, the
maintenance Lambda reads both, for the consumer lag it publishes to CloudWatch (the job commits no Kafka
offsets).

`ascep:latency:<writer>` is written about once a second by each writer of stage latencies: `ingest:<host>:<pid>`
(a producer: exchange_ingest, ingest_kafka), `job:read:<host>:<pid>:<n>` (a tick reader: kafka_job) and
`job:sink:<host>:<pid>:<n>` (a sink: job, job_redis). Each field is a stage, its value
`{"at": epoch ms, "count": n, "bins": [[bin, count], ...]}` (core/latency.py); the hash expires LATENCY_TTL_S after
its writer's last report, and /api/latency leaves out a summary older than a minute.
`ascep:live` messages are `{"kind": "prices" | "signal", "published_at": epoch ms, "data": ...}`: `published_at` is
when the sink published it, for the Redis -> WebSocket latency (docs/observability.md).
"""
PREFIX = "ascep"
SIGNALS_INDEX = f"{PREFIX}:signals"
SIGNALS_STREAM = f"{PREFIX}:signals:stream"
PRICES_INDEX = f"{PREFIX}:prices"
COUNTERS = f"{PREFIX}:counters"
LIVE_CHANNEL = f"{PREFIX}:live"
RULE_STATS = f"{PREFIX}:rules:stats"  # and RULE_STATS:<bucket> for detection buckets other than 0


def rule_stats_key(part: int) -> str:
    """The hash of one rule engine's counters: the job has one per detection bucket when scaled out."""
    return RULE_STATS if part == 0 else f"{RULE_STATS}:{part}"

# Outlives the embedded broker's in-memory `rules` topic: `ascep up` re-publishes from it (docs/rules.md).
RULES_IN_FORCE = f"{PREFIX}:rules:in_force"
JOB = f"{PREFIX}:job"
# The embedded broker's watermark offsets are unreliable, so producers report the offsets their deliveries got.
PROGRESS = f"{PREFIX}:progress"
TOPIC_ENDS = f"{PREFIX}:topic:ends"
LATENCY = f"{PREFIX}:latency"
LATENCY_TTL_S = 90  # a little over the minute /api/latency looks at
SIGNALS_KEPT = 10_000
# KEYS[1] = TOPIC_ENDS, ARGV = field, offset, field, offset, ...: each field raised to its offset, never lowered.
RAISE_ENDS = """
for i = 1, #ARGV, 2 do
  if tonumber(ARGV[i + 1]) > tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1') then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 0
"""


def rate_limit_key(name: str, who: str) -> str:
    """`who` is "user:<id>" or "ip:<address>" (dashboard/access.py); the key lives as long as its window."""
    return f"{PREFIX}:ratelimit:{name}:{who}"


def signal_key(signal_id: str) -> str:
    return f"{PREFIX}:signal:{signal_id}"


def price_key(venue: str, symbol: str) -> str:
    return f"{PREFIX}:price:{venue}:{symbol}"


def ingest_key(venue: str) -> str:
    """Redis hash with the latest metrics snapshot of a venue's connector."""
    return f"{PREFIX}:ingest:{venue}"


def latency_key(writer: str) -> str:
    """Redis hash of one writer's stage latencies (core/latency.py)."""
    return f"{LATENCY}:{writer}"


def progress_field(stage: str, topic: str, partition: int) -> str:
    return f"{stage}:{topic}:{partition}"


def topic_end_field(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def parse_progress_field(field: str) -> tuple[str, str, int]:
    """(stage, topic, partition) of a PROGRESS field; Kafka topic names hold no ':'."""
    parts = field.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise ValueError(f"{PROGRESS} field {field!r} is not <stage>:<topic>:<partition>")
    return parts[0], parts[1], int(parts[2])


def parse_topic_end_field(field: str) -> tuple[str, int]:
    parts = field.split(":")
    if len(parts) != 2 or not parts[1].isdigit():
        raise ValueError(f"{TOPIC_ENDS} field {field!r} is not <topic>:<partition>")
    return parts[0], int(parts[1])
