"""What the parts of ASCEP agree on: the records on each topic and the keys in Redis."""
