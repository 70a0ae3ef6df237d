"""Conformance suite: the agent HTTP API checked against consul-facts.md."""
