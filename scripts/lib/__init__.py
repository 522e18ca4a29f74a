"""What the comparison scripts in scripts/ share (Python 3.11 standard
library only): `support`, the Python twins of helpers in tests/support,
and `rounds`, the plumbing of a run of rounds against servers."""
