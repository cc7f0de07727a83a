"""The store fixtures (tests/messagestore/stores.py) for every module here."""

from tests.messagestore.stores import backend, cassandra_config, fast_clock, mongodb_config, store, stream

__all__ = ["backend", "cassandra_config", "fast_clock", "mongodb_config", "store", "stream"]
