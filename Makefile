# The project's two commands: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-cluster check install install-dev serve services-up services-down clean bench bench-store bench-join-storm bench-upload bench-search

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The test suite's, linters' and type checker's packages on top.
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Embedded default: SQLite, in-memory channel layer, SQL message store, demo users.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Open http://$(HOST):$(PORT)/ and log in as alice, bob or carol."
	@# The worker beside the server (missed-message emails with EMAIL_URL set, unused files removed), stopped with it.
	$(PY) manage.py chat_worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(PY) -m chatsite.server --bind $(HOST) --port $(PORT)

# ruff and mypy (pyproject.toml), then Redis, PostgreSQL, Cassandra and
# FerretDB through scripts/services, then the suite four times
# (scripts/run_tests.py): production shape, embedded default, and the
# end-to-end tests on each real message store.
test: install-dev
	$(PY) scripts/run_tests.py

# Beyond one machine (issue 19, docs/scaling.md): Redis, PostgreSQL and a
# three-node Cassandra cluster (127.0.0.2-4) through scripts/services, then
# tests/cluster: the faults they survive (scripts/run_cluster_tests.py).
test-cluster: install-dev
	$(PY) scripts/run_cluster_tests.py

# The static checks alone (make test runs them first).
check: install-dev
	$(PY) scripts/run_tests.py --checks-only

# Fan-out, latency, memory per idle connection, against Centrifugo (Go; built
# from the Go module proxy into ~/.cache/chat-bench the first time), the
# Channels tutorial chat and python-socketio (bench/run.py; prints the table;
# under 10 minutes once built). LOADGEN=go: the fan-out clients of ours and
# Centrifugo are bench/goload (Go) instead of Python workers.
LOADGEN ?= python
bench: install-dev
	$(PY) bench/run.py --loadgen $(LOADGEN)

# p50/p99 of a 50-message history page in a channel of 1,000,000 messages, per
# message store (README "Message stores"); starts the services it reads.
bench-store: install-dev
	set -a; eval "$$(scripts/services up postgres cassandra mongodb)"; set +a; $(PY) bench/store_bench.py

# Search: 1,000,000 messages in 200 channels across 10 workspaces on
# PostgreSQL; p50/p99 of searches by a member of 20 channels, and the send
# path with indexing on and off (bench/search_bench.py; figures in
# docs/search.md). Starts the services it reads.
bench-search: install-dev
	set -a; eval "$$(scripts/services up postgres)"; set +a; $(PY) bench/search_bench.py

# Join storm: 1,000 members join one public channel within 10 s; the server's
# CPU, frames per client and by type, join latency (bench/join_storm.py;
# figures in docs/presence.md). Starts the services it reads.
bench-join-storm: install-dev
	set -a; eval "$$(scripts/services up redis postgres)"; set +a; $(PY) bench/join_storm.py

# Uploads: 20 concurrent 10 MB uploads (then 20 ~10 MB JPEGs) while 50 members
# chat; the server's RSS growth and chat p99 during them (bench/upload_bench.py;
# figures in docs/files.md). Starts the services it reads.
bench-upload: install-dev
	set -a; eval "$$(scripts/services up redis postgres)"; set +a; $(PY) bench/upload_bench.py

services-up:
	scripts/services up

services-down:
	scripts/services down

clean:
	rm -rf $(VENV) .test-db.sqlite3* test-artifacts
