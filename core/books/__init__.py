"""Order books rebuilt from a venue's snapshots and deltas: pure, shared by every venue's parser."""
