"""The node/cluster tests use the shared ``dev_agent`` (TTLs down to 100ms) and
``make_cluster`` fixtures of tests/conftest.py."""
