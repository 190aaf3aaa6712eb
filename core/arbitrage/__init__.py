"""Arbitrage detectors: plain Python, no I/O and no PyFlink, so they run and test on their own."""
