# headend: the two set-up commands are `make demo` and `make test`. Both install what a
# fresh Debian 12 machine lacks first (deploy/install-deps.sh, idempotent).

# Keep the build cache outside the clone so a fresh clone (CI) reuses it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/headend-target
CARGO ?= cargo
DEPS_STAMP := $(CARGO_TARGET_DIR)/.deps-ok

.PHONY: deps demo test test-fast lint bench clean chaos

$(DEPS_STAMP): deploy/install-deps.sh
	./deploy/install-deps.sh
	@mkdir -p $(CARGO_TARGET_DIR) && touch $@

deps: $(DEPS_STAMP)

## Run one node with two demo channels on loopback multicast (Ctrl-C stops it).
demo: deps
	$(CARGO) run --release -p headend-node --bin headend -- demo --data-dir ./data

## All tests: unit, integration (real FFmpeg libraries, real multicast on loopback).
test: deps
	./deploy/target-space.sh
	$(CARGO) build --workspace --all-targets
	# The process tests run the binary this build made (building it again for one package
	# alone would resolve features differently and recompile the stack).
	HEADEND_BIN=$(CARGO_TARGET_DIR)/debug/headend $(CARGO) test --workspace -- --test-threads=2

## Chaos tests: nodes in network namespaces, link cuts, Raft partitions, loss and delay
## (root, iproute2, nftables; every scenario, the slow ones included).
chaos: deps
	$(CARGO) build -p headend-node --bin headend
	HEADEND_BIN=$(CARGO_TARGET_DIR)/debug/headend $(CARGO) test -p headend-cluster-tests --test chaos -- --include-ignored --test-threads=1

lint: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Benchmarks against ffmpeg and multicat; updates nothing by itself (see bench/README.md).
bench: deps
	$(CARGO) run --release -p headend-bench -- playout

clean:
	rm -rf ./data
