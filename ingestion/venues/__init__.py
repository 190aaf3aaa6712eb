"""One module per venue; each only turns a received frame into ticks (see base.py)."""
