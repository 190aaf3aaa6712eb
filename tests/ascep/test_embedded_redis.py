"""The embedded services as `ascep up` starts them."""
from __future__ import annotations

import redis

from ascep.services import start_redis


def test_a_redis_restarted_on_its_data_answers_once_it_has_loaded_it(tmp_path):
    """Redis listens before it has read its append-only file and answers LOADING meanwhile: `ascep up --restore`
    after a 10-minute run failed with "Redis is loading the dataset in memory"."""
    data, logs = tmp_path / "redis", tmp_path / "logs"
    first = start_redis(logs, data_dir=data)
    client = redis.Redis.from_url(first.address)
    value = "x" * 100
    for start in range(0, 2_000_000, 10_000):
        client.mset({f"key:{i}": value for i in range(start, start + 10_000)})
    client.close()
    first.stop()
    again = start_redis(logs, data_dir=data)
    try:
        client = redis.Redis.from_url(again.address)
        assert client.dbsize() == 2_000_000  # at once: neither LOADING nor a connection closed while loading
        client.close()
    finally:
        again.stop()
