# Sendarix top-level build.
#
#   make			build everything into $(BUILD)/ (never installs packages)
#   make check		install missing packages (as root), build, run all tests
#   make run		install missing packages, build, start a demo on loopback
#   make stop		stop the demo started by make run
#   make asan		build with AddressSanitizer+UBSan into build-asan/, run tests
#   make bench		benchmarks against Postfix (tools/bench)
#   make bench-crash	lost/duplicate counts under kills and reloads (tools/bench/crash)
#   make install DESTDIR=... PREFIX=...
#
# Files are found by wildcard: lib/LAYER/*.c make one library per layer
# (lib/util, lib/global, lib/master; docs/architecture.md), each daemon
# folder makes the program of the same name, cli/sendarix*.c make sendarix,
# tests/unit/*_test.c make one cmocka test each; sandbox/ makes the
# sandbox program that "sendarix sandbox" runs.

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

PKGS		:= libevent libpcre2-8 jansson libunbound
PKG_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS	:= $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS	:= $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

OPTFLAGS	?= -O2 -g
WARNFLAGS	:= -Wall -Wextra -Werror
override CFLAGS += -std=c11 $(OPTFLAGS) $(WARNFLAGS) -D_GNU_SOURCE $(LIB_INC) \
		   $(PKG_CFLAGS) \
		   -DSENDARIX_CONFIG_DIR='"$(CONFDIR)"' \
		   -DSENDARIX_DAEMON_DIR='"$(LIBEXECDIR)"' \
		   -DSENDARIX_COMMAND_DIR='"$(SBINDIR)"' \
		   -DSENDARIX_QUEUE_DIR='"$(QUEUEDIR)"'
LDLIBS		+= $(PKG_LIBS) -ldb

# A daemon folder builds once it has sources. The sandbox (run by
# "sendarix sandbox") is a program of the same kind: built from its folder
# and installed beside the daemons in LIBEXECDIR.
DAEMONS		:= $(foreach d,master smtpd cleanup qmgr smtp-out bounce pickup sandbox,\
		     $(if $(wildcard $(d)/*.c),$(d)))
# lib/ in layers, lowest first: a layer uses only itself and those below.
# Optional libraries (lib/tls, lib/sasl, lib/dkim, lib/milter) are layers
# above global that only the programs naming them link, e.g.
#	smtpd_XLIBS := tls sasl
#	tls_LDLIBS := -lssl -lcrypto
# A folder builds once it has sources (tools/check-layers knows them).
LIB_LAYERS	:= util global master
# TLS: OpenSSL and libevent's OpenSSL layer, for who speaks SMTP on the net.
tls_LDLIBS	:= -levent_openssl -lssl -lcrypto
smtpd_XLIBS	:= tls
smtp-out_XLIBS	:= tls
sandbox_XLIBS	:= tls
# SASL: Cyrus SASL (in worker threads); XOAUTH2 introspection posts
# through lib/http, which smtpd links for it.
sasl_LDLIBS	:= -lsasl2 -lpthread
smtpd_XLIBS	+= sasl
# A program's own libraries beside its layers: smtp-out's SASL client.
smtp-out_LDLIBS	:= -lsasl2
# lib/http: asynchronous HTTP(S) (libcurl), the one HTTP client: MTA-STS,
# TLS-RPT uploads, smtpd's XOAUTH2 token introspection. It is built with
# curl's headers but loads libcurl.so.4 with dlopen() (in glibc's libc)
# when a process first uses HTTP, so nothing links -lcurl: a daemon with
# those features off does not map libcurl and its twenty-odd libraries.
http_LDLIBS	:=
smtp-out_XLIBS	+= http
smtpd_XLIBS	+= http
LIB_OPTIONAL	:= $(foreach l,tls sasl dkim milter http,\
		     $(if $(wildcard lib/$(l)/*.c),$(l)))
LIB_INC		:= $(foreach l,$(LIB_LAYERS) $(LIB_OPTIONAL),-Ilib/$(l))
LIB_SRCS	:= $(foreach l,$(LIB_LAYERS) $(LIB_OPTIONAL),\
		     $(wildcard lib/$(l)/*.c))
LIB_OBJS	:= $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
# Linked highest layer first, so each archive finds what it needs below.
LIB_AS		:= $(foreach l,master global util,$(BUILD)/libsendarix-$(l).a)
LIB_A		:= $(LIB_AS)
CLI_SRCS	:= $(wildcard cli/sendarix*.c)
UNIT_SRCS	:= $(wildcard tests/unit/*_test.c)
UNIT_BINS	:= $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS	:= $(wildcard tests/fuzz/*_fuzz.c)
HELPER_SRCS	:= $(wildcard tests/helpers/*.c)
HELPER_BINS	:= $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
SENDMAIL_SRCS	:= $(wildcard cli/sendmail*.c)
PROGRAMS	:= $(DAEMONS:%=$(BUILD)/bin/%) $(BUILD)/bin/sendarix \
		   $(if $(SENDMAIL_SRCS),$(BUILD)/bin/sendmail)

# The bench's LD_PRELOAD shim that raises OpenSMTPD's listen backlog
# (tools/bench/listen_backlog.c; built here, used only by tools/bench).
BENCH_SHIM	:= $(BUILD)/tools/listen_backlog.so

all: $(PROGRAMS) $(UNIT_BINS) $(HELPER_BINS) $(BENCH_SHIM)

# Never with sanitizers (make asan's OPTFLAGS): it is preloaded into
# OpenSMTPD, which is not built with their runtime.
$(BENCH_SHIM): tools/bench/listen_backlog.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g $(WARNFLAGS) -fPIC -shared -o $@ $< -ldl

# The installation paths are compiled in: rebuild when they change, so
# "make install PREFIX=/usr" never installs programs built for another
# PREFIX.
PATHS_STAMP	:= $(BUILD)/.paths
PATHS_NOW	:= $(CONFDIR):$(LIBEXECDIR):$(SBINDIR):$(QUEUEDIR)
ifneq ($(MAKECMDGOALS),clean)
$(shell mkdir -p $(BUILD); test "$$(cat $(PATHS_STAMP) 2>/dev/null)" = \
	"$(PATHS_NOW)" || echo "$(PATHS_NOW)" > $(PATHS_STAMP))
endif

$(BUILD)/obj/%.o: %.c $(PATHS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

define lib_rule
$$(BUILD)/libsendarix-$(1).a: $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(wildcard lib/$(1)/*.c))
	@mkdir -p $$(dir $$@)
	rm -f $$@
	$$(AR) rcs $$@ $$^
endef
$(foreach l,$(LIB_LAYERS) $(LIB_OPTIONAL),$(eval $(call lib_rule,$(l))))

define daemon_rule
$(1)_OBJS := $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(wildcard $(1)/*.c))
$(1)_XA := $$(foreach x,$$($(1)_XLIBS),$$(BUILD)/libsendarix-$$(x).a)
$$(BUILD)/bin/$(1): $$($(1)_OBJS) $$($(1)_XA) $$(LIB_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$($(1)_OBJS) $$($(1)_XA) \
	    $$(LIB_A) $$(foreach x,$$($(1)_XLIBS),$$($$(x)_LDLIBS)) \
	    $$($(1)_LDLIBS) $$(LDLIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

# sendarix: lib/http and zlib for "sendarix tlsrpt --send".
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_XA := $(BUILD)/libsendarix-http.a
$(BUILD)/bin/sendarix: $(CLI_OBJS) $(CLI_XA) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(CLI_XA) $(LIB_A) \
	    $(http_LDLIBS) -lz $(LDLIBS)

SENDMAIL_OBJS := $(SENDMAIL_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/bin/sendmail: $(SENDMAIL_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(SENDMAIL_OBJS) $(LIB_A) $(LDLIBS)

# Unit tests and test helpers may test the optional libraries too.
UNIT_XA		:= $(foreach x,$(LIB_OPTIONAL),$(BUILD)/libsendarix-$(x).a)
UNIT_XLDLIBS	:= $(foreach x,$(LIB_OPTIONAL),$($(x)_LDLIBS))
$(BUILD)/tests/helpers/%: $(BUILD)/obj/tests/helpers/%.o $(UNIT_XA) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(UNIT_XA) $(LIB_A) \
	    $(UNIT_XLDLIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_XA) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(UNIT_XA) $(LIB_A) \
	    $(UNIT_XLDLIBS) $(LDLIBS) $(CMOCKA_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Packages: make check and make run install what is missing (as root).
deps:
	@tools/install-deps

check: deps
	$(MAKE) all
	$(MAKE) layers
	$(MAKE) cppcheck
	$(MAKE) fuzz-smoke
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

ASAN_MAKE	= $(MAKE) BUILD=build-asan \
	    OPTFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined"

# Sanitizer reports of every process, daemons included, go to files in
# build-asan/reports (master passes the options on through
# import_environment, see tests/integration/conftest.py); any report
# fails the run.
ASAN_REPORTS	= $(abspath build-asan/reports)

asan:
	$(ASAN_MAKE) all
	rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS) && \
	    chmod 1777 $(ASAN_REPORTS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:log_path=$(ASAN_REPORTS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(ASAN_REPORTS)/ubsan \
	    $(ASAN_MAKE) test
	@if [ -n "$$(ls -A $(ASAN_REPORTS))" ]; then \
	    cat $(ASAN_REPORTS)/*; echo "asan: sanitizer reports above"; \
	    exit 1; fi; echo "asan: no sanitizer reports"

# Fuzz targets: tests/fuzz/NAME_fuzz.c are libFuzzer programs, built with
# clang against an ASan+UBSan copy of the library. "make fuzz" runs each
# for FUZZ_SECONDS; "make fuzz-smoke" (part of make check) runs each for a
# bounded number of inputs to keep them working.
FUZZ_BUILD	:= build-fuzz
FUZZ_SECONDS	?= 60
FUZZ_RUNS	?= 20000
FUZZ_BINS	:= $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/fuzz/%)

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang \
	    OPTFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
	    $(LIB_AS:$(BUILD)/%=$(FUZZ_BUILD)/%)
	@mkdir -p $(FUZZ_BUILD)/fuzz
	for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	    clang -std=c11 -O1 -g -D_GNU_SOURCE $(LIB_INC) $(PKG_CFLAGS) \
	    -fsanitize=fuzzer,address,undefined -o $(FUZZ_BUILD)/fuzz/$$n $$f \
	    $(LIB_AS:$(BUILD)/%=$(FUZZ_BUILD)/%) $(LDLIBS) || exit 1; done

fuzz: fuzz-build
	for b in $(FUZZ_BINS); do n=$$(basename $$b); \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	    $$b -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus/$$n \
	    $$(test -d tests/fuzz/corpus/$$n && echo tests/fuzz/corpus/$$n) \
	    || exit 1; done

fuzz-smoke: fuzz-build
	for b in $(FUZZ_BINS); do n=$$(basename $$b); \
	    $$b -runs=$(FUZZ_RUNS) -seed=1 \
	    $$(test -d tests/fuzz/corpus/$$n && echo tests/fuzz/corpus/$$n) \
	    >$(FUZZ_BUILD)/$$n.log 2>&1 || { tail -40 $(FUZZ_BUILD)/$$n.log; exit 1; }; \
	    echo "fuzz $$n: $(FUZZ_RUNS) inputs, no crash"; done

bench: deps
	$(MAKE) all
	tools/bench/run $(BUILD)

bench-crash: deps
	$(MAKE) all
	tools/bench/crash $(BUILD)

# lib/ in layers: no file includes a header of a layer above its own.
layers:
	tools/check-layers .

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --inline-suppr -D__GNUC__ --std=c11 $(LIB_INC) \
	    lib $(DAEMONS) cli tests/helpers tools/bench

install: $(PROGRAMS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) \
	    $(DESTDIR)$(CONFDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(BUILD)/bin/sendarix $(DESTDIR)$(SBINDIR)/sendarix
	if [ -x $(BUILD)/bin/sendmail ]; then \
	    install -m 755 $(BUILD)/bin/sendmail $(DESTDIR)$(SBINDIR)/sendmail; \
	    ln -sf sendmail $(DESTDIR)$(SBINDIR)/mailq; fi
	for d in $(DAEMONS); do \
	    install -m 755 $(BUILD)/bin/$$d $(DESTDIR)$(LIBEXECDIR)/$$d; done
	for f in conf/main.cf conf/master.cf; do \
	    test -e $(DESTDIR)$(CONFDIR)/$$(basename $$f) || \
	    install -m 644 $$f $(DESTDIR)$(CONFDIR)/; done
	for s in 1 5 8; do for f in man/*.$$s; do test -e "$$f" && \
	    install -m 644 $$f $(DESTDIR)$(MANDIR)/man$$s/; done; done; true

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all deps check test unit run stop asan bench bench-crash cppcheck layers \
	install clean \
	fuzz fuzz-build fuzz-smoke
