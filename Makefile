# slotd: build, test, install.
CC ?= gcc
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build

PKGS := libarchive libcrypto libsystemd inih libcurl jansson libmicrohttpd gnutls
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

VERSION := 0.1.0
override CFLAGS += -std=gnu11 -MMD -MP -Wall -Wextra -Werror -D_GNU_SOURCE -DSLOTD_VERSION=\"$(VERSION)\" -Islots -Iagent $(PKG_CFLAGS)
LDLIBS := $(PKG_LIBS)

ifeq ($(SANITIZE),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
BUILD := build-sanitize
endif

SLOTS_SRC := $(sort $(wildcard slots/*.c))
AGENT_SRC := $(filter-out agent/slotd.c agent/slotctl.c,$(sort $(wildcard agent/*.c)))
TEST_SRC := $(sort $(wildcard tests/unit/test-*.c))

SLOTS_OBJ := $(SLOTS_SRC:%.c=$(BUILD)/%.o)
AGENT_OBJ := $(AGENT_SRC:%.c=$(BUILD)/%.o)
TESTS := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

PROGRAMS := slotd slotctl

.PHONY: all check unit integration bench demo install deps clean format cppcheck
all: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libslots.a: $(SLOTS_OBJ)
	$(AR) rcs $@ $^
$(BUILD)/libagent.a: $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

slotd slotctl: %: $(BUILD)/agent/%.o $(BUILD)/libagent.a $(BUILD)/libslots.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libagent.a $(BUILD)/libslots.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The test command of the README: installs what is missing, builds, runs
# every unit and integration test.
check: deps
	$(MAKE) all $(TESTS)
	$(MAKE) unit integration

unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

integration: $(PROGRAMS)
	bash tests/integration/run.sh

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --std=c11 -Islots -Iagent slots agent

bench: deps all
	bash scripts/bench.sh

demo: deps all
	bash scripts/demo.sh

deps:
	@bash scripts/install-deps.sh --check-only || bash scripts/install-deps.sh

install: all
	install -D -m 0755 slotd $(DESTDIR)$(PREFIX)/bin/slotd
	install -D -m 0755 slotctl $(DESTDIR)$(PREFIX)/bin/slotctl

format:
	clang-format -i slots/*.[ch] agent/*.[ch] tests/unit/*.c

clean:
	rm -rf build build-sanitize $(PROGRAMS)

-include $(SLOTS_OBJ:.o=.d) $(AGENT_OBJ:.o=.d) $(BUILD)/agent/slotd.d $(BUILD)/agent/slotctl.d
