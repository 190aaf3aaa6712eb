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
| ascep:progress | hash | `<stage>:<topic>:<partition>` -> JSON `{"next", "advanced_at", "polled_at"}` (1) |
| ascep:topic:ends | hash | `<topic>:<partition>` -> the offset after the newest acknowledged record (2) |
| ascep:live | pub/sub channel | every price and signal update, for the dashboard |

(1) where each of the job's readers is: the next offset, when it last moved and when it last polled (ms);
    stages `read` (the tick reader), `rules`, `lake` (the archivers: the offset up to which the lake is durable).
(2) from the producers' delivery reports; raised, never lowered.
"""
PREFIX = "ascep"
SIGNALS_INDEX = f"{PREFIX}:signals"
SIGNALS_STREAM = f"{PREFIX}:signals:stream"
PRICES_INDEX = f"{PREFIX}:prices"
COUNTERS = f"{PREFIX}:counters"
LIVE_CHANNEL = f"{PREFIX}:live"
RULE_STATS = f"{PREFIX}:rules:stats"
# Outlives the embedded broker's in-memory `rules` topic: `ascep up` re-publishes from it (docs/rules.md).
RULES_IN_FORCE = f"{PREFIX}:rules:in_force"
JOB = f"{PREFIX}:job"
# The embedded broker's watermark offsets are unreliable, so producers report the offsets their deliveries got.
PROGRESS = f"{PREFIX}:progress"
TOPIC_ENDS = f"{PREFIX}:topic:ends"
SIGNALS_KEPT = 10_000


def signal_key(signal_id: str) -> str:
    return f"{PREFIX}:signal:{signal_id}"


def price_key(venue: str, symbol: str) -> str:
    return f"{PREFIX}:price:{venue}:{symbol}"


def ingest_key(venue: str) -> str:
    """Redis hash with the latest metrics snapshot of a venue's connector."""
    return f"{PREFIX}:ingest:{venue}"


def progress_field(stage: str, topic: str, partition: int) -> str:
    return f"{stage}:{topic}:{partition}"


def topic_end_field(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"
