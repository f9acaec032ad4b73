# slotd: build, test, install.
CC ?= gcc
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build

PKGS := libarchive libcrypto libsystemd inih libcurl jansson libmicrohttpd gnutls
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl and libarchive are loaded on first use (agent/curldl.c,
# slots/archivedl.c), not linked; the unit tests that build archives link
# libarchive themselves.
PKG_LIBS := $(shell pkg-config --libs $(filter-out libcurl libarchive,$(PKGS)) 2>/dev/null)

VERSION := 0.1.0
override CFLAGS += -std=gnu11 -MMD -MP -Wall -Wextra -Werror -D_GNU_SOURCE -DSLOTD_VERSION=\"$(VERSION)\" -Islots -Iagent $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS)

# Programs land in the tree; the sanitizer build keeps its own copies in
# build-sanitize/, so it never replaces the programs the tests and
# benchmarks run.
OUT :=
ifeq ($(SANITIZE),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
BUILD := build-sanitize
OUT := build-sanitize/
endif

SLOTS_SRC := $(sort $(wildcard slots/*.c))
AGENT_SRC := $(filter-out agent/slotd.c agent/slotctl.c,$(sort $(wildcard agent/*.c)))
TEST_SRC := $(sort $(wildcard tests/unit/test-*.c))

SLOTS_OBJ := $(SLOTS_SRC:%.c=$(BUILD)/%.o)
AGENT_OBJ := $(AGENT_SRC:%.c=$(BUILD)/%.o)
TESTS := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

PROGRAMS := $(OUT)slotd $(OUT)slotctl
MANPAGES := $(patsubst man/%.scd,$(BUILD)/man/%,$(wildcard man/*.scd))

.PHONY: all check unit integration bench demo install deps clean format cppcheck
all: $(PROGRAMS) $(MANPAGES)

$(BUILD)/man/%: man/%.scd
	@mkdir -p $(dir $@)
	scdoc < $< > $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libslots.a: $(SLOTS_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/libagent.a: $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Symbols bound at start (full RELRO): no lazy binding later, whose lookups
# would map the symbol tables of every library again after slotd gave its
# start-up pages back (agent/residency.c).
$(PROGRAMS): $(OUT)%: $(BUILD)/agent/%.o $(BUILD)/libagent.a $(BUILD)/libslots.a
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,-z,relro,-z,now -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libagent.a $(BUILD)/libslots.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.a,$^) $(LDLIBS) -larchive -lcmocka

# The test command of the README: installs what is missing, builds, runs
# every unit and integration test.
check: deps
	$(MAKE) all $(TESTS)
	$(MAKE) cppcheck
	$(MAKE) unit
	$(MAKE) SANITIZE=1 unit
	$(MAKE) integration

unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

integration: $(PROGRAMS)
	bash tests/integration/run.sh

# cppcheck does not model __attribute__((cleanup)), so every scoped
# allocation reads as a leak to it: memleak is left to LeakSanitizer, which
# the SANITIZE=1 build runs under the unit tests.
cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --std=c11 --suppress=memleak -D_GNU_SOURCE \
		-DSLOTD_VERSION='"$(VERSION)"' -Islots -Iagent slots agent

bench: deps all
	bash scripts/bench.sh

demo: deps all
	bash scripts/demo.sh

deps:
	@bash scripts/install-deps.sh --check-only || bash scripts/install-deps.sh

BINDIR = $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
CATALOGDIR ?= $(PREFIX)/lib/systemd/catalog
DOCDIR ?= $(PREFIX)/share/doc/slotd
MANDIR ?= $(PREFIX)/share/man

install: all
	install -D -m 0755 slotd $(DESTDIR)$(BINDIR)/slotd
	install -D -m 0755 slotctl $(DESTDIR)$(BINDIR)/slotctl
	install -d $(DESTDIR)$(UNITDIR)
	for u in slotd.service slotd@.service slotd.socket; do \
		sed 's|@BINDIR@|$(BINDIR)|g' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	install -D -m 0644 systemd/slotd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/slotd.conf
	install -D -m 0644 systemd/slotd.catalog $(DESTDIR)$(CATALOGDIR)/slotd.catalog
	install -D -m 0644 examples/slotd.conf $(DESTDIR)$(DOCDIR)/examples/slotd.conf
	install -D -m 0644 systemd/translator-worker.service.example $(DESTDIR)$(DOCDIR)/examples/translator-worker.service
	install -d $(DESTDIR)$(DOCDIR)/examples/hooks
	install -m 0755 hooks/pre-install hooks/post-install hooks/health-check hooks/post-commit $(DESTDIR)$(DOCDIR)/examples/hooks/
	install -m 0644 hooks/README.md $(DESTDIR)$(DOCDIR)/examples/hooks/README.md
	install -D -m 0755 scripts/slot-keygen $(DESTDIR)$(BINDIR)/slot-keygen
	install -D -m 0755 scripts/slot-package $(DESTDIR)$(BINDIR)/slot-package
	install -D -m 0755 scripts/slot-publish $(DESTDIR)$(BINDIR)/slot-publish
	for m in $(MANPAGES); do \
		n=$${m##*/}; s=$${n##*.}; \
		install -D -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/$$n; \
	done

format:
	clang-format -i slots/*.[ch] agent/*.[ch] tests/unit/*.c

clean:
	rm -rf build build-sanitize slotd slotctl

-include $(SLOTS_OBJ:.o=.d) $(AGENT_OBJ:.o=.d) $(BUILD)/agent/slotd.d $(BUILD)/agent/slotctl.d $(TESTS:=.d)
