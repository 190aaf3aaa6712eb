"""The bottom layer: contracts (tick, signal, topics, dead letters, Redis keys), settings, and the pure
cores (CEP, arbitrage). No I/O beyond reading settings, and no PyFlink, Django or Kafka import."""
