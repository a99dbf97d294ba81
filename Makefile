# Everything a fresh machine needs lives here: `make test` and `make demo` install it.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# What the build needs (a C compiler, OpenSSL headers), and the real peers and tools the tests drive.
BUILD_DEBS := gcc libssl-dev
DEBS   := $(BUILD_DEBS) aria2 transmission-cli transmission-common transmission-daemon qbittorrent-nox opentracker mktorrent tmux fiu-utils strace chromium
STAMP  := $(VENV)/.installed
# The interop tests mostly wait on real peers and timers, not on the CPU: three workers take the suite
# from ~17 to ~7 minutes on two cores. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
LOG    := $(VENV)/install.log
APT_LOG := $(VENV)/apt.log

.PHONY: demo test bench lint fuzz system-deps build-deps venv clean

# One line per step on screen; pip's output (and this machine's pip config warnings) goes to a log whose
# tail is shown only when the install fails.
$(STAMP): pyproject.toml setup.py $(wildcard torrentpy/_core/*.pyx torrentpy/_core/*.pxd)
	@if [ ! -x $(PY) ]; then echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV) || exit 1; fi
	@echo "installing torrentpy and its dependencies (log: $(LOG))"
	@{ $(PIP) install --upgrade pip && $(PIP) install -e '.[test,fuzz]'; } >$(LOG) 2>&1 || \
		{ tail -n 25 $(LOG); echo "install failed: the whole log is $(LOG)"; exit 1; }
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		echo "installing Debian packages: $(DEBS) (log: $(APT_LOG))"; mkdir -p $(VENV); \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBS); } >$(APT_LOG) 2>&1 || \
			{ tail -n 25 $(APT_LOG); echo "apt-get failed: the whole log is $(APT_LOG)"; exit 1; }; \
	fi

build-deps:
	@if ! dpkg -s $(BUILD_DEBS) >/dev/null 2>&1; then \
		echo "installing Debian packages: $(BUILD_DEBS) (log: $(APT_LOG))"; mkdir -p $(VENV); \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BUILD_DEBS); } >$(APT_LOG) 2>&1 || \
			{ tail -n 25 $(APT_LOG); echo "apt-get failed: the whole log is $(APT_LOG)"; exit 1; }; \
	fi

# The download is rate-limited so a person can watch the dashboard for a few seconds.
demo: build-deps $(STAMP)
	@$(VENV)/bin/torrentpy demo --rate 40M

lint: $(STAMP)
	$(VENV)/bin/ruff check torrentpy tests bench fuzz
	$(VENV)/bin/mypy

test: system-deps $(STAMP) lint
	@$(VENV)/bin/pytest -q -ra -n $(TEST_WORKERS) tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# py-spy (profiles; see bench/README.md) is a dependency of the benchmarks only.
bench: system-deps $(STAMP)
	@test -x $(VENV)/bin/py-spy || $(PIP) install -q 'py-spy>=0.3' >>$(LOG) 2>&1 || { tail -n 25 $(LOG); exit 1; }
	$(VENV)/bin/pytest -q bench --benchmark-columns=min,mean,median,ops -p no:randomly -s

# Every fuzz target for FUZZ_SECONDS each (new inputs in .fuzz/corpus/, crashes in .fuzz/crashes/, the
# whole libFuzzer output in .fuzz/TARGET.log); stops at the first target that finds a crash.
FUZZ_SECONDS ?= 180
fuzz: $(STAMP)
	@mkdir -p .fuzz
	@for t in $$($(PY) fuzz/run.py --list); do \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s (log: .fuzz/$$t.log)"; \
		$(PY) fuzz/run.py $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 >.fuzz/$$t.log 2>&1; rc=$$?; \
		grep -aE '^(Done|stat::number_of_executed_units)' .fuzz/$$t.log; \
		if [ $$rc -ne 0 ]; then tail -n 40 .fuzz/$$t.log; echo "$$t: crash (see .fuzz/crashes/)"; exit 1; fi; \
	done

clean:
	rm -rf $(VENV) build *.egg-info torrentpy/_core/*.so torrentpy/_core/*.c
