"""Shared plumbing of both chat apps: ids, JSON, the broadcast helper, the rate
limiter and the one message store interface."""
