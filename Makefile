# Sendarix top-level build.
#
#   make			build everything into $(BUILD)/ (never installs packages)
#   make check		install missing packages (as root), build, run all tests
#   make run		install missing packages, build, start a demo on loopback
#   make stop		stop the demo started by make run
#   make asan		build with AddressSanitizer+UBSan into build-asan/, run tests
#   make bench		benchmarks against Postfix (tools/bench)
#   make install DESTDIR=... PREFIX=...
#
# Files are found by wildcard: lib/*.c make libsendarix.a, each daemon
# folder makes the program of the same name, cli/sendarix*.c make sendarix,
# tests/unit/*_test.c make one cmocka test each.

PREFIX		?= /usr/local
ifeq ($(PREFIX),/usr)
SYSCONFDIR	?= /etc
LOCALSTATEDIR	?= /var
else
SYSCONFDIR	?= $(PREFIX)/etc
LOCALSTATEDIR	?= $(PREFIX)/var
endif
SBINDIR		?= $(PREFIX)/sbin
LIBEXECDIR	?= $(PREFIX)/libexec/sendarix
MANDIR		?= $(PREFIX)/share/man
CONFDIR		?= $(SYSCONFDIR)/sendarix
QUEUEDIR	?= $(LOCALSTATEDIR)/spool/sendarix

BUILD		?= build
CC		?= cc
PKG_CONFIG	?= pkg-config
PYTHON		?= /usr/bin/python3

PKGS		:= libevent libpcre2-8 jansson
PKG_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS	:= $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

OPTFLAGS	?= -O2 -g
WARNFLAGS	:= -Wall -Wextra -Werror
override CFLAGS += -std=c11 $(OPTFLAGS) $(WARNFLAGS) -D_GNU_SOURCE -Ilib \
		   $(PKG_CFLAGS) \
		   -DSENDARIX_CONFIG_DIR='"$(CONFDIR)"' \
		   -DSENDARIX_DAEMON_DIR='"$(LIBEXECDIR)"' \
		   -DSENDARIX_COMMAND_DIR='"$(SBINDIR)"' \
		   -DSENDARIX_QUEUE_DIR='"$(QUEUEDIR)"'
LDLIBS		+= $(PKG_LIBS) -ldb

DAEMONS		:= master smtpd cleanup
LIB_SRCS	:= $(wildcard lib/*.c)
LIB_OBJS	:= $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_A		:= $(BUILD)/libsendarix.a
CLI_SRCS	:= $(wildcard cli/sendarix*.c)
UNIT_SRCS	:= $(wildcard tests/unit/*_test.c)
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS	:= $(wildcard tests/fuzz/*_fuzz.c)
PROGRAMS	:= $(DAEMONS:%=$(BUILD)/bin/%) $(BUILD)/bin/sendarix

all: $(PROGRAMS) $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

define daemon_rule
$(1)_OBJS := $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(wildcard $(1)/*.c))
$$(BUILD)/bin/$(1): $$($(1)_OBJS) $$(LIB_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$($(1)_OBJS) $$(LIB_A) $$(LDLIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/bin/sendarix: $(CLI_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIB_A) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS) $(CMOCKA_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Packages: make check and make run install what is missing (as root).
deps:
	@tools/install-deps

check: deps
	$(MAKE) all
	$(MAKE) test

test: all
	tests/unit/run $(BUILD)/tests
	SENDARIX_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q tests/integration

unit: all
	tests/unit/run $(BUILD)/tests

run: deps
	$(MAKE) all
	tools/run-demo start $(BUILD)

stop:
	tools/run-demo stop $(BUILD)

asan:
	$(MAKE) BUILD=build-asan \
	    OPTFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(MAKE) BUILD=build-asan test

bench: deps
	$(MAKE) all
	tools/bench/run $(BUILD)

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --inline-suppr -D__GNUC__ --std=c11 -Ilib \
	    lib $(DAEMONS) cli

install: $(PROGRAMS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) \
	    $(DESTDIR)$(CONFDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(BUILD)/bin/sendarix $(DESTDIR)$(SBINDIR)/sendarix
	for d in $(DAEMONS); do \
	    install -m 755 $(BUILD)/bin/$$d $(DESTDIR)$(LIBEXECDIR)/$$d; done
	for f in conf/main.cf conf/master.cf; do \
	    test -e $(DESTDIR)$(CONFDIR)/$$(basename $$f) || \
	    install -m 644 $$f $(DESTDIR)$(CONFDIR)/; done
	for s in 1 5 8; do for f in man/*.$$s; do test -e "$$f" && \
	    install -m 644 $$f $(DESTDIR)$(MANDIR)/man$$s/; done; done; true

clean:
	rm -rf build build-asan

.PHONY: all deps check test unit run stop asan bench cppcheck install clean
