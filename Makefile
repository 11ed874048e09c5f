# berichtd - plain Makefile.
#
#   make              build bin/berichtd
#   make deps         install missing Debian packages (idempotent); says which
#                     ones single targets (lint, fmt, valgrind, bench-*, fuzz,
#                     openapi-lint's npm) still lack: each installs its own
#   make test         deps, build, unit tests (Criterion) and integration tests
#                     against private PostgreSQL, Redis and SMTP servers
#   make test SANITIZE=address,undefined   the same, instrumented
#   make test-faults  the fault matrix (issue 13; FAULTS=a,b for a subset)
#   make soak         SOAK_S seconds (600) of mixed load with one failover
#   make run          deps, build, private services under .run/, demo daemon
#   make lint / fmt   clang-tidy + cppcheck / clang-format
#   make bench-report the yearly report from rollups vs brute force (1M, 10M rows;
#                     several minutes and a few GB of disk)
#   make config/berichtd.conf   regenerate the documented example config
#   make fuzz [FUZZ_S=60] every libFuzzer harness of tests/fuzz/ for FUZZ_S seconds,
#                     after replaying tests/fuzz/regressions/ (clang, build/fuzz)
#   make man          build/man/berichtd.8 and berichtd.conf.5 (`berichtd man 8|5`)
#   make deb          build/berichtd_<version>_amd64.deb (dpkg-deb, config/deb/)
#   make deb-check    the package: lintian, installed on this machine, smoke-tested,
#                     purged (CI runs it; root)

CC       ?= cc
SANITIZE ?=
PKGS     := libevent libpq hiredis libesmtp-1.0 jansson libcrypto libssl libevent_openssl
PYTHON   := /usr/bin/python3

ifeq ($(SANITIZE),)
BUILD    := build/release
BIN      := bin/berichtd
SANFLAGS :=
else
BUILD    := build/sanitize
BIN      := bin/berichtd-sanitize
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
# daemon/ headers are included by their folder ("core/http.h"), common/ ones as "common/x.h"
CPPFLAGS := -I. -Idaemon -D_GNU_SOURCE
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) $(SANFLAGS) -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LDLIBS   = $(PKG_LIBS) -lpthread
LDFLAGS  += $(SANFLAGS)

COMMON_SRC := $(wildcard common/*.c)
DAEMON_SRC := $(wildcard daemon/*.c daemon/*/*.c)
UNIT_SRC   := $(wildcard tests/unit/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)
# daemon modules without I/O that have unit tests of their own
UNIT_OBJ   += $(BUILD)/daemon/core/ratelimit.o
# docs/openapi.yaml as JSON inside the binary (GET /v1/openapi.json)
OPENAPI_C  := $(BUILD)/gen/openapi_json.c
DAEMON_OBJ += $(BUILD)/gen/openapi_json.o
UNIT_BIN   := $(BUILD)/unit-tests

DEB_PKGS := build-essential pkg-config libevent-dev libpq-dev libhiredis-dev \
            libesmtp-dev libjansson-dev libssl-dev libcriterion-dev postgresql \
            redis-server postfix python3 python3-aiosmtpd python3-pytest python3-pytest-xdist \
            python3-psycopg2 python3-yaml python3-jsonschema curl chromium openssl

.PHONY: all pkg-check deps lint-deps valgrind-deps node-deps fuzz fuzz-deps fuzz-build test layers fmt-check unit integration run clean lint fmt check-example openapi-lint valgrind bench bench-deps bench-ingest bench-delivery bench-report bench-tls bench-idle systemd-check bench-dp man deb deb-check alerts-check faults-deps test-faults soak

all: $(BIN)

$(BUILD)/%.o: %.c | pkg-check
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(OPENAPI_C): docs/openapi.yaml docs/openapi-embed.py
	@mkdir -p $(dir $@)
	$(PYTHON) docs/openapi-embed.py docs/openapi.yaml $@

$(BUILD)/gen/openapi_json.o: $(OPENAPI_C)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	ar rcs $@ $^

$(BIN): $(DAEMON_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJ) $(BUILD)/libcommon.a $(LDLIBS)

# the unit tests include the module headers by their bare names
$(UNIT_OBJ): CPPFLAGS += -Icommon

# daemon modules without I/O that the unit tests specify directly
UNIT_DAEMON_OBJ := $(BUILD)/daemon/stats/report.o $(BUILD)/daemon/stats/report_agency.o \
                   $(BUILD)/daemon/stats/report_csv.o $(BUILD)/daemon/stats/report_html.o \
                   $(BUILD)/daemon/notify/smtp_verdict.o \
                   $(BUILD)/daemon/agency/message.o $(BUILD)/daemon/agency/ingest_group.o \
                   $(BUILD)/daemon/core/route.o $(BUILD)/daemon/core/pgval.o \
                   $(BUILD)/daemon/notify/render.o $(BUILD)/daemon/notify/retry.o \
                   $(BUILD)/daemon/notify/throttle.o $(BUILD)/daemon/core/queue.o \
                   $(BUILD)/daemon/core/pgpool.o $(BUILD)/daemon/core/pgpool_conn.o \
                   $(BUILD)/daemon/core/tls.o \
                   $(BUILD)/daemon/core/framing.o $(BUILD)/daemon/core/framing_head.o \
                   $(BUILD)/daemon/core/framing_chunked.o \
                   $(BUILD)/daemon/portal/representation.o

$(UNIT_BIN): $(UNIT_OBJ) $(UNIT_DAEMON_OBJ) $(BUILD)/libcommon.a
	@pkg-config --exists criterion || { echo "make: Criterion missing: run 'make deps'" \
		"(apt-get install libcriterion-dev)" >&2; exit 1; }
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(UNIT_DAEMON_OBJ) $(BUILD)/libcommon.a \
		$(shell pkg-config --libs criterion) $(LDLIBS) -lm

# The build's libraries, said in one line when missing (a fresh machine).
pkg-check:
	@pkg-config --exists $(PKGS) 2>/dev/null || { echo "make: build libraries missing" \
		"($$(for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || printf ' %s' $$p; done) ):" \
		"run 'make deps' (apt-get install $(DEB_PKGS))" >&2; exit 1; }

# Installs only what is missing, so a second run is a no-op.
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
			|| { echo "deps: apt-get failed" >&2; exit 1; }; \
	elif [ "$(origin DEB_PKGS)" = file ]; then \
		echo "deps: all installed for build, test and run"; \
	else echo "deps: all installed ($(DEB_PKGS))"; fi
	@if [ "$(origin DEB_PKGS)" = file ]; then \
		later=$$(for e in $(EXTRA_PKGS); do p=$${e%%:*}; \
			dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
				|| echo "$$p ($${e#*:})"; done; \
			command -v npm >/dev/null || echo "npm (openapi-lint, bench-delivery)"); \
		[ -z "$$later" ] || echo "deps: not yet installed, each installed by the first make of its target:" $$later; \
	fi

# What single targets need beyond DEB_PKGS, installed by each on first use
# (package:targets, for the report of `make deps`).
LINT_PKGS     := clang-tidy cppcheck clang-format
VALGRIND_PKGS := valgrind
EXTRA_PKGS    = $(foreach p,$(LINT_PKGS),$(p):lint,fmt) $(foreach p,$(VALGRIND_PKGS),$(p):valgrind) \
                $(foreach p,$(BENCH_PKGS),$(p):bench-ingest,bench-delivery) \
                $(foreach p,$(FUZZ_PKGS),$(p):fuzz) $(foreach p,$(PROM_PKGS),$(p):alerts-check) \
                $(foreach p,$(FAULTS_PKGS),$(p):test-faults,soak)

lint-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(LINT_PKGS)"

valgrind-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(VALGRIND_PKGS)"

# npm for Spectral and BullMQ: Debian's npm, unless a node with npm is there already
# (NodeSource's nodejs bundles npm and conflicts with Debian's package)
node-deps:
	@command -v npm >/dev/null || $(MAKE) --no-print-directory deps DEB_PKGS=npm

# CRITERION_NO_EARLY_EXIT lets LeakSanitizer see the test processes' ends
unit: $(UNIT_BIN)
	CRITERION_NO_EARLY_EXIT=1 $(UNIT_BIN) --jobs 2

# The documented example is generated from the config key table; a drift fails the tests.
config/berichtd.conf: $(BIN)
	$(BIN) config-example > $@

check-example: $(BIN)
	@$(BIN) config-example | diff -u config/berichtd.conf - \
		|| { echo "config/berichtd.conf is stale: run 'make config/berichtd.conf'" >&2; exit 1; }

integration: deps $(BIN)
	BERICHTD_BIN=$(abspath $(BIN)) tests/run-integration.sh

# The pipeline tests with the daemon and every CLI call under valgrind memcheck
# (slow; not part of `make test`, which runs ASan/UBSan in CI instead).
valgrind: deps valgrind-deps all
	BERICHTD_BIN=$(abspath tests/harness/valgrind-berichtd.sh) tests/run-integration.sh -k "test_pipeline"

test: deps
	$(MAKE) layers all unit check-example systemd-check openapi-lint alerts-check integration SANITIZE=$(SANITIZE)

# promtool (Debian's prometheus): the alert rules operators load (docs/operations.md),
# and test_metrics.py checks a scrape with it
PROM_PKGS := prometheus

alerts-check:
	@command -v promtool >/dev/null || $(MAKE) --no-print-directory deps DEB_PKGS="$(PROM_PKGS)"
	promtool check rules docs/alerts.yml

# docs/openapi.yaml against the Dutch API Design Rules ruleset (shared/ is a
# sibling of the clone in CI and on our machines). Spectral is pinned in
# tests/spectral/package-lock.json and installed there once.
SPECTRAL_RULESET ?= ../shared/api-rules/adr-2.2.0-linter.spectral.yaml
SPECTRAL := tests/spectral/node_modules/.bin/spectral

$(SPECTRAL): tests/spectral/package.json tests/spectral/package-lock.json
	npm ci --prefix tests/spectral --no-audit --no-fund --loglevel=error
	@touch $@

openapi-lint: node-deps
	@if [ ! -f "$(SPECTRAL_RULESET)" ]; then \
		echo "openapi-lint: skipped: ruleset not found ($(SPECTRAL_RULESET))"; \
	else \
		$(MAKE) --no-print-directory $(SPECTRAL) && \
		$(SPECTRAL) lint -r "$(SPECTRAL_RULESET)" docs/openapi.yaml; \
	fi

run: deps all
	tests/harness/demo.sh

# Benchmarks are not part of `make test`: they print figures as ratios to
# limits measured in the same run (COPY and pgbench, smtp-source and BullMQ,
# a brute-force query over the raw rows); no assertions.
bench: bench-ingest bench-delivery bench-report

# the load generator the ingest bench uses, beside what make deps installs
BENCH_PKGS := wrk

bench-deps: deps
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_PKGS)"

bench-ingest: bench-deps all
	tests/bench/run.sh

bench-delivery: bench-deps node-deps all
	$(PYTHON) tests/bench/bench_delivery.py

bench-tls: bench-deps all
	@run_dir=.bench-run/tls-$$$$; trap 'tests/harness/services.sh stop '"$$run_dir"' >/dev/null 2>&1' EXIT; \
	tests/harness/services.sh start "$$run_dir" >/dev/null && \
	BERICHTD_BIN=$(abspath $(BIN)) $(PYTHON) tests/bench/bench_tls.py "$$run_dir"

bench-idle: bench-deps all
	@run_dir=.bench-run/idle-$$$$; trap 'tests/harness/services.sh stop '"$$run_dir"' >/dev/null 2>&1' EXIT; \
	tests/harness/services.sh start "$$run_dir" >/dev/null && \
	BERICHTD_BIN=$(abspath $(BIN)) $(PYTHON) tests/bench/bench_idle.py "$$run_dir"

# The fault matrix and the soak of issue 13 (tests/faults/: the whole cluster
# on one box: 2 PostgreSQL nodes with a synchronous standby, Redis primary,
# replica and sentinel, 2 berichtd behind HAProxy). FAULTS=name,name runs a
# subset (tests/faults/run.py --list); the restore drill runs after it when
# tests/faults/restore_drill.py is there. The soak is not part of make test.
FAULTS_PKGS := haproxy redis-sentinel postgresql-15-auto-failover pg-auto-failover-cli
SOAK_S ?= 600

faults-deps: deps
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FAULTS_PKGS)"

test-faults: faults-deps all
	BERICHTD_BIN=$(abspath $(BIN)) FAULTS="$(FAULTS)" $(PYTHON) tests/faults/run.py
	@if [ -f tests/faults/restore_drill.py ] && [ -z "$(FAULTS)" ]; then \
		echo "test-faults: the restore drill"; \
		BERICHTD_BIN=$(abspath $(BIN)) $(PYTHON) tests/faults/restore_drill.py; fi

soak: faults-deps all
	BERICHTD_BIN=$(abspath $(BIN)) $(PYTHON) tests/faults/soak.py $(SOAK_S)


# The unit, sysusers and tmpfiles snippets as systemd reads them (CI has no
# systemd as PID 1: verify the unit offline, with ExecStart pointing at this
# build, apply the snippets to a scratch root), and the unit's exposure score.
SYSTEMD_PKGS := systemd

systemd-check: $(BIN)
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(SYSTEMD_PKGS)"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	sed "s#/usr/bin/berichtd#$(abspath $(BIN))#g" systemd/berichtd.service > "$$tmp/berichtd.service" && \
	systemd-analyze verify --man=no "$$tmp/berichtd.service" && \
	mkdir -p "$$tmp/root/etc" && \
	systemd-sysusers --root="$$tmp/root" "$(abspath systemd/berichtd.sysusers)" >/dev/null 2>&1 && \
	grep -q '^berichtd:' "$$tmp/root/etc/passwd" && \
	systemd-tmpfiles --root="$$tmp/root" --create "$(abspath systemd/berichtd.tmpfiles)" && \
	test -d "$$tmp/root/etc/berichtd" && \
	systemd-analyze security --offline=true "$$tmp/berichtd.service" | tail -1 && \
	echo "systemd-check: unit, sysusers and tmpfiles ok"

bench-report: deps all
	BERICHTD_BIN=$(abspath $(BIN)) tests/bench/bench_report.sh

# libFuzzer harnesses (tests/fuzz/README.md), built with clang against the
# project's own sources in build/fuzz, apart from the gcc builds. libFuzzer
# itself is in libclang-rt-14-dev on Debian 12 (clang's sanitizer runtimes).
FUZZ_PKGS    := clang libclang-rt-14-dev
FUZZ_CC      := clang
FUZZ_S       ?= 60
FUZZ_JOBS    ?= 2
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -g -O1 $(WARN) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
# the pure daemon modules the harnesses drive (besides all of common/)
FUZZ_LIB_SRC := $(COMMON_SRC) daemon/agency/message.c daemon/core/route.c \
                daemon/core/framing_head.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libfuzzed.a: $(FUZZ_LIB_OBJ)
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/libfuzzed.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

# the regressions first, then each harness FUZZ_S seconds, two at a time
fuzz: deps fuzz-build
	FUZZ_S=$(FUZZ_S) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $(FUZZ_NAMES)

# the agency view's accuracy at the default epsilon and max_per_citizen (issue 10)
$(BUILD)/dp-accuracy: tests/bench/dp_accuracy.c $(BUILD)/libcommon.a
	$(CC) $(CPPFLAGS) -Icommon $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcommon.a $(LDLIBS)

bench-dp: $(BUILD)/dp-accuracy
	$(BUILD)/dp-accuracy

# The include and size rules of docs/architecture.md (layers, no circles, files
# up to 600 lines, functions up to 80); part of test and lint.
layers:
	$(PYTHON) tests/lint/check_layers.py .
	$(PYTHON) tests/lint/check_size.py .

# Every C file of common/ and daemon/ as clang-format (.clang-format) would write it.
FMT_SRC = $(wildcard common/*.[ch] daemon/*.[ch] daemon/*/*.[ch])

LINT_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

fmt-check: lint-deps
	@clang-format --dry-run --Werror $(FMT_SRC) \
		|| { echo "unformatted files: run 'make fmt'" >&2; exit 1; }

lint: lint-deps layers fmt-check
	@echo "clang-tidy: $(words $(COMMON_SRC) $(DAEMON_SRC)) files, $(LINT_JOBS) at a time"
	@printf '%s\n' $(COMMON_SRC) $(DAEMON_SRC) | xargs -P $(LINT_JOBS) -n 4 sh -c \
		'clang-tidy --quiet "$$@" -- $(CPPFLAGS) $(PKG_CFLAGS) -std=c11' clang-tidy
	cppcheck --quiet -j $(LINT_JOBS) --error-exitcode=1 --inline-suppr \
		--enable=warning,performance,portability --std=c11 \
		--suppress=missingIncludeSystem -I. common daemon

fmt: lint-deps
	clang-format -i $(FMT_SRC)

clean:
	rm -rf build bin

-include $(COMMON_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) \
	$(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.d)

# The manual pages, generated by the binary from its command and config tables
# (`berichtd man 8|5`), so they cannot drift; groff must have nothing to say.
MAN_DIR   := build/man
MAN_PAGES := $(MAN_DIR)/berichtd.8 $(MAN_DIR)/berichtd.conf.5

man: $(MAN_PAGES)

$(MAN_DIR)/berichtd.8: $(BIN)
	@mkdir -p $(dir $@)
	$(BIN) man 8 > $@.tmp
	@w=$$(groff -man -ww -z $@.tmp 2>&1); [ -z "$$w" ] || { echo "$$w" >&2; exit 1; }
	@mv $@.tmp $@

$(MAN_DIR)/berichtd.conf.5: $(BIN)
	@mkdir -p $(dir $@)
	$(BIN) man 5 > $@.tmp
	@w=$$(groff -man -ww -z $@.tmp 2>&1); [ -z "$$w" ] || { echo "$$w" >&2; exit 1; }
	@mv $@.tmp $@

# The Debian package (config/deb/build.sh stages it, dpkg-deb builds it).
# The version and the paths are common/install.h's; the binary is built
# apart, in build/deb, with Debian's hardening flags (dpkg-buildflags).
install_h    = $(shell sed -n 's/^\#define $(1) "\(.*\)"$$/\1/p' common/install.h)
DEB_VERSION  := $(call install_h,BERICHTD_VERSION)
DEB_REVISION := 1
DEB_MAINTAINER ?= berichtd maintainers <berichtd@berichtenbox.example>
DEB_BUILD    := build/deb
DEB_BIN      := $(DEB_BUILD)/bin/berichtd
DEB_FLAGS    = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
LINTIAN_PKGS := lintian

deb: man
	@CFLAGS="$$($(DEB_FLAGS) CFLAGS) $$($(DEB_FLAGS) CPPFLAGS)" \
	LDFLAGS="$$($(DEB_FLAGS) LDFLAGS)" \
	$(MAKE) --no-print-directory BUILD=$(DEB_BUILD)/obj BIN=$(DEB_BIN) SANITIZE= $(DEB_BIN)
	VERSION=$(DEB_VERSION) DEB_REVISION=$(DEB_REVISION) \
	DATADIR=$(call install_h,BERICHTD_DATADIR) CONFIG_FILE=$(call install_h,BERICHTD_CONFIG_FILE) \
	MAINTAINER="$(DEB_MAINTAINER)" config/deb/build.sh $(DEB_BIN) build

deb-check: deb
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(LINTIAN_PKGS) $(SYSTEMD_PKGS)"
	config/deb/check.sh build/berichtd_$(DEB_VERSION)-$(DEB_REVISION)_*.deb $(DEB_VERSION)
