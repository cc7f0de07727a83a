"""How the Cassandra store talks to a cluster of several replicas
(CASSANDRA_REPLICATION > 1): which host coordinates a request, and what
happens when a replica or a coordinator fails mid-request.

- Load balancing: token-aware over DC-aware round robin, so a request goes
  to a replica of its partition in the local datacenter (one network hop
  fewer, and the coordinator's own copy counts toward the quorum).
- Retries (`NextHostRetryPolicy`): a failure the coordinator reports
  (a read or write timeout, too few replicas alive) or a broken connection is
  tried once more on the next host of the plan, when repeating the statement
  cannot change its outcome. A lightweight transaction (`... IF ...`: the
  store's id allocation, clientId reservation, read pointers, reactions and
  change feed) is never repeated after it may have reached the replicas: its
  first attempt may have won, and a repeat would see its own write as someone
  else's. Its failure reaches the caller as StoreError, and the client's
  retry with the same clientId settles it (PROTOCOL.md's safe retry).
- Reads (prepared, marked idempotent) are also sent to a second host when the
  first has not answered within SPECULATIVE_DELAY: a coordinator killed
  before the driver noticed costs that delay, not the request timeout.

With one node (replication 1, the default) none of this is used: the
driver's defaults, as before.
"""

from __future__ import annotations

import re
from typing import Any

from cassandra.policies import (
    ConstantSpeculativeExecutionPolicy,
    DCAwareRoundRobinPolicy,
    RetryPolicy,
    TokenAwarePolicy,
    WriteType,
)
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import SimpleStatement

SPECULATIVE_DELAY = 1.0  # seconds; a read's p99 on a busy 2-core machine is well below
# A conditional write as cqlengine renders it (values are always bound
# parameters, so message text can never match).
_CONDITIONAL = re.compile(r"\bIF\b", re.IGNORECASE)


def retry_safe(query: Any) -> bool:
    """Whether running `query` twice leaves what running it once leaves:
    marked idempotent (the prepared reads), or a plain insert, update, delete
    or select of cqlengine's (every column set to a value, no counter, no
    list append, no condition)."""
    if getattr(query, "is_idempotent", False):
        return True
    if isinstance(query, SimpleStatement):
        return not _CONDITIONAL.search(query.query_string)
    return False


class NextHostRetryPolicy(RetryPolicy):
    """Once more on the next host, when that is safe (module docstring)."""

    def on_read_timeout(self, query, consistency, required_responses, received_responses, data_retrieved, retry_num):
        if retry_num == 0:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_write_timeout(self, query, consistency, write_type, required_responses, received_responses, retry_num):
        # CAS: the Paxos round may have been accepted; the outcome is unknown.
        if retry_num == 0 and write_type != WriteType.CAS and retry_safe(query):
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
        # Refused before any replica saw it: always safe; another coordinator
        # may know better who is alive.
        if retry_num == 0:
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None

    def on_request_error(self, query, consistency, error, retry_num):
        # Overloaded / bootstrapping: not executed. A broken connection: maybe
        # executed, so only a statement that is safe to repeat goes on.
        not_executed = isinstance(error, (OverloadedErrorMessage, IsBootstrappingErrorMessage))
        if retry_num < 2 and (not_executed or retry_safe(query)):
            return self.RETRY_NEXT_HOST, None
        return self.RETHROW, None


def cluster_policies(datacenter: str = "") -> dict[str, Any]:
    """The execution profile's policies for a cluster (replication > 1);
    `datacenter`: the local one (default: the first contact point's)."""
    return {
        "load_balancing_policy": TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=datacenter or None)),
        "retry_policy": NextHostRetryPolicy(),
        "speculative_execution_policy": ConstantSpeculativeExecutionPolicy(delay=SPECULATIVE_DELAY, max_attempts=1),
    }
