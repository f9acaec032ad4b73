/* slotctl.c: the operator's command line. It works on the store directly,
 * taking the same lock as slotd, so it also works when slotd is down. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "config.h"
#include "fileio.h"
#include "log.h"
#include "operation.h"
#include "status.h"
#include "update.h"

/* Exit codes of the contract (SPEC section 1). */
enum {
        EXIT_DONE = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        EXIT_REJECTED = 3,
        EXIT_BUSY = 75,
};

typedef struct Options {
        const char *config_path;
        bool json;
        bool quiet;
        bool wait;
        const char *sig;
        bool no_restart;
        bool force;
} Options;

static Options opts;

static void usage(FILE *out) {
        (void) fprintf(
                out,
                "usage: slotctl [-c CONFIG] [--json] [-q] [--wait] COMMAND\n"
                "\n"
                "commands:\n"
                "  status                         slots, phase, service, last result\n"
                "  check                          what the coordinator offers; changes nothing\n"
                "  update                         check, then download and install\n"
                "  install FILE [--sig SIGFILE]   verify, unpack, switch, verify service\n"
                "  verify FILE [--sig SIGFILE]    check a package's signature and metadata\n"
                "  switch [a|b] [--no-restart] [--force]\n"
                "                                 emergency switch (default: the other slot)\n"
                "  rollback                       back to the previous good slot\n"
                "  mark-good SLOT | mark-bad SLOT set a slot's state by hand\n"
                "\n"
                "CONFIG defaults to $SLOTD_CONFIG, then " CONFIG_DEFAULT_PATH ".\n"
                "Exit codes: 0 done, 1 failed (store left safe), 2 usage or config,\n"
                "3 input rejected, 75 busy (another operation holds the lock).\n");
}

static int exit_for(int r, const Reason *reason) {
        if (r >= 0)
                return EXIT_DONE;
        return reason->rejected ? EXIT_REJECTED : EXIT_FAILED;
}

static void print_json(json_t *doc) {
        (void) json_dumpf(doc, stdout, JSON_INDENT(2));
        (void) fputc('\n', stdout);
}

static void download_progress(uint64_t done, uint64_t total, double rate, void *userdata) {
        const char *what = userdata;
        if (total)
                (void) printf("\rdownloading %s: %3d%% at %.1f MB/s", what,
                              (int) (done * 100 / total), rate / 1e6);
        else
                (void) printf("\rdownloading %s: %.1f MB at %.1f MB/s", what, (double) done / 1e6,
                              rate / 1e6);
        (void) fflush(stdout);
}

static int print_status(Agent *a) {
        _cleanup_(json_decrefp) json_t *doc = NULL;
        int r = status_build(a, &doc);
        if (r < 0) {
                log_error("cannot build status: %s", strerror(-r));
                return EXIT_FAILED;
        }
        if (opts.json)
                print_json(doc);
        else
                status_print_text(doc, stdout);
        return EXIT_DONE;
}

/* Prints the outcome of a store operation and maps it to an exit code. */
static int finish(Agent *a, int r, const Reason *reason, const char *what, const char *done) {
        if (r < 0) {
                log_error("%s: %s", what, reason->text[0] ? reason->text : strerror(-r));
                if (opts.json)
                        (void) print_status(a);
                return exit_for(r, reason);
        }
        if (opts.json)
                return print_status(a);
        if (!opts.quiet && done)
                (void) printf("%s\n", done);
        return EXIT_DONE;
}

static int cmd_status(Agent *a, char **args) {
        (void) args;
        /* Status never waits, and takes the lock only when an interrupted
         * operation left something to repair and nobody else runs, so
         * polling it does not make other commands busy. */
        if (store_needs_recovery(a->store) && store_lock(a->store, false) == 0) {
                Reason reason = REASON_NULL;
                if (op_recover(a, &reason) < 0)
                        log_warning("%s", reason.text);
                store_unlock(a->store);
        }
        return print_status(a);
}

static int cmd_verify(Agent *a, char **args) {
        Reason reason = REASON_NULL;
        _cleanup_free_ char *summary = NULL;
        int r = op_verify(a, args[0], opts.sig, &summary, &reason);
        if (r < 0) {
                log_error("verification of %s failed: %s", args[0], reason.text);
                return exit_for(r, &reason);
        }
        if (opts.json) {
                _cleanup_(json_decrefp) json_t *doc =
                        json_pack("{s:s, s:b}", "package", args[0], "verified", 1);
                print_json(doc);
        } else if (!opts.quiet)
                (void) printf("%s\n", summary);
        return EXIT_DONE;
}

/* `install URL`: fetches the package (at most max_package_size) and its
 * signature (--sig, a file or URL; else URL.minisig) into state_dir; the
 * install then checks the signature as for a local file. */
static int download_for_install(Agent *a, const char *url, char **ret_path, char **ret_sig,
                                Reason *reason) {
        const Config *c = a->config;
        _cleanup_free_ char *path = NULL, *sig_path = NULL, *sig_url = NULL, *sig = NULL;
        size_t sig_len = 0;
        char dir[4096];
        int r;

        (void) snprintf(dir, sizeof(dir), "%s/download", c->state_dir);
        if ((r = mkdir_p(dir, 0700)) < 0)
                return reason_fail(reason, r, "cannot create %s: %s", dir, strerror(-r));
        if (asprintf(&path, "%s/install-url.pkg", dir) < 0 ||
            asprintf(&sig_path, "%s/install-url.pkg.minisig", dir) < 0)
                return -ENOMEM;
        r = fetch_file(c, url, c->max_package_size, path, a->progress ? download_progress : NULL,
                       (void *) "package", reason);
        if (a->progress)
                (void) printf("\n");
        if (r < 0)
                return r;
        if (opts.sig && !strstr(opts.sig, "://")) {
                *ret_path = TAKE_PTR(path);
                return 0; /* a local signature file, used as it is */
        }
        if (opts.sig)
                sig_url = strdup(opts.sig);
        else if (asprintf(&sig_url, "%s.minisig", url) < 0)
                sig_url = NULL;
        if (!sig_url)
                return -ENOMEM;
        r = fetch_document(c, sig_url, 4096, NULL, &sig, &sig_len, NULL, NULL, reason);
        if (r < 0) {
                (void) unlink(path);
                if (reason)
                        reason->rejected = r == -ENOENT; /* no signature: refused */
                return r;
        }
        r = write_file_atomic(sig_path, sig, sig_len, 0600);
        if (r < 0)
                return reason_fail(reason, r, "cannot write %s: %s", sig_path, strerror(-r));
        *ret_path = TAKE_PTR(path);
        *ret_sig = TAKE_PTR(sig_path);
        return 0;
}

static int cmd_install(Agent *a, char **args) {
        Reason reason = REASON_NULL;
        char done[256];

        _cleanup_free_ char *downloaded = NULL, *downloaded_sig = NULL;
        const char *path = args[0], *sig = opts.sig;
        if (strstr(args[0], "://")) {
                int r = download_for_install(a, args[0], &downloaded, &downloaded_sig, &reason);
                if (r < 0) {
                        log_error("cannot install %s: %s", args[0], reason.text);
                        return exit_for(r, &reason);
                }
                path = downloaded;
                if (downloaded_sig)
                        sig = downloaded_sig;
        }
        int r = op_install(a, path, sig, &reason);
        if (downloaded) {
                (void) unlink(downloaded);
                if (downloaded_sig)
                        (void) unlink(downloaded_sig);
        }
        if (r == OP_UP_TO_DATE) {
                (void) snprintf(done, sizeof(done), "already up to date: slot %s runs %s",
                                slot_name(store_active(a->store)),
                                a->store->st.slots[store_active(a->store)].version);
                return finish(a, 0, &reason, NULL, done);
        }
        int active = store_active(a->store);
        (void) snprintf(done, sizeof(done), "installed %s into slot %s, now active",
                        active >= 0 ? a->store->st.slots[active].version : "?",
                        active >= 0 ? slot_name(active) : "?");
        char what[512];
        (void) snprintf(what, sizeof(what), "cannot install %s", args[0]);
        return finish(a, r, &reason, what, done);
}

static int parse_slot_arg(const char *arg, int *ret) {
        int slot = slot_from_name(arg);
        if (slot < 0) {
                log_error("bad slot \"%s\": expected a or b", arg);
                return -EINVAL;
        }
        *ret = slot;
        return 0;
}

static int cmd_switch(Agent *a, char **args) {
        Reason reason = REASON_NULL;
        int slot = -1;
        char done[128];

        if (args[0] && parse_slot_arg(args[0], &slot) < 0)
                return EXIT_USAGE;
        int r = op_switch(a, slot,
                          (SwitchFlags){.no_restart = opts.no_restart, .force = opts.force},
                          &reason);
        int active = store_active(a->store);
        if (r == OP_UP_TO_DATE)
                (void) snprintf(done, sizeof(done), "slot %s is already active", slot_name(active));
        else
                (void) snprintf(done, sizeof(done), "switched to slot %s (%s)", slot_name(active),
                                active >= 0 ? a->store->st.slots[active].version : "?");
        return finish(a, r < 0 ? r : 0, &reason, "switch failed", done);
}

static int cmd_rollback(Agent *a, char **args) {
        Reason reason = REASON_NULL;
        char done[128];
        (void) args;
        int r = op_rollback(a, &reason);
        int active = store_active(a->store);
        (void) snprintf(done, sizeof(done), "rolled back to slot %s (%s)", slot_name(active),
                        active >= 0 ? a->store->st.slots[active].version : "?");
        return finish(a, r, &reason, "rollback failed", done);
}

static int cmd_mark(Agent *a, char **args, SlotState state) {
        Reason reason = REASON_NULL;
        char done[128];
        int slot;
        if (parse_slot_arg(args[0], &slot) < 0)
                return EXIT_USAGE;
        int r = op_mark(a, slot, state, &reason);
        (void) snprintf(done, sizeof(done), "slot %s marked %s", slot_name(slot),
                        slot_state_to_string(state));
        char what[64];
        (void) snprintf(what, sizeof(what), "cannot mark slot %s", slot_name(slot));
        return finish(a, r, &reason, what, done);
}

static int cmd_mark_good(Agent *a, char **args) {
        return cmd_mark(a, args, SLOT_GOOD);
}

static int cmd_mark_bad(Agent *a, char **args) {
        return cmd_mark(a, args, SLOT_BAD);
}

static const char *const offer_words[] = {
        [OFFER_INSTALL] = "install",
        [OFFER_UP_TO_DATE] = "up_to_date",
        [OFFER_NOT_IN_ROLLOUT] = "not_in_rollout",
        [OFFER_KNOWN_BAD] = "known_bad",
};

static void print_offer(Agent *a, const CheckResult *res) {
        const Manifest *m = res->manifest;
        int active = store_active(a->store);
        const char *installed = active >= 0 ? a->store->st.slots[active].version : "";

        if (opts.json) {
                _cleanup_(json_decrefp) json_t *doc = json_pack(
                        "{s:s, s:o, s:s, s:s, s:I, s:s, s:b}", "offered_version", m->version,
                        "active_version", installed[0] ? json_string(installed) : json_null(),
                        "decision", offer_words[res->offer], "url", m->url, "size",
                        (json_int_t) m->size, "sha256", m->sha256_hex, "would_install",
                        res->offer == OFFER_INSTALL);
                print_json(doc);
                return;
        }
        if (opts.quiet)
                return;
        switch (res->offer) {
        case OFFER_INSTALL:
                (void) printf("offered %s (active %s): would install\n", m->version,
                              installed[0] ? installed : "none");
                break;
        case OFFER_UP_TO_DATE:
                (void) printf("offered %s: already up to date\n", m->version);
                break;
        case OFFER_NOT_IN_ROLLOUT:
                (void) printf("offered %s: worker %s is outside the rollout (%d%%), not "
                              "installing\n",
                              m->version, a->config->worker_id, m->percent);
                break;
        case OFFER_KNOWN_BAD:
                (void) printf("offered %s: it failed here before (slot %s is bad), not "
                              "installing\n",
                              m->version, slot_name(active == 0 ? 1 : 0));
                break;
        }
}

static int cmd_check(Agent *a, char **args) {
        Reason reason = REASON_NULL;
        _cleanup_(check_result_done) CheckResult res = {0};
        (void) args;
        int r = update_check(a, false, &res, &reason);
        if (r < 0) {
                log_error("check failed: %s", reason.text);
                return exit_for(r, &reason);
        }
        print_offer(a, &res);
        return EXIT_DONE;
}

static int cmd_update(Agent *a, char **args) {
        Reason reason = REASON_NULL;
        _cleanup_(check_result_done) CheckResult res = {0};
        char what[300], done[256];
        (void) args;

        int r = update_check(a, false, &res, &reason);
        if (r < 0) {
                if (reason.rejected) {
                        agent_record_result(a, RESULT_REJECTED, NULL, NULL, reason.text);
                        (void) store_save(a->store);
                        agent_emit(a, EVENT_UPDATE_REJECTED, NULL, NULL, -1, -1, reason.text);
                }
                log_error("update failed: %s", reason.text);
                return exit_for(r, &reason);
        }
        if (res.offer != OFFER_INSTALL) {
                print_offer(a, &res);
                return EXIT_DONE;
        }
        r = update_apply(a, res.manifest, a->progress ? download_progress : NULL,
                         res.manifest->version, &reason);
        if (a->progress)
                (void) printf("\n");
        int active = store_active(a->store);
        (void) snprintf(what, sizeof(what), "update to %s failed", res.manifest->version);
        (void) snprintf(done, sizeof(done), "updated to %s on slot %s", res.manifest->version,
                        active >= 0 ? slot_name(active) : "?");
        if (r == OP_UP_TO_DATE)
                r = 0;
        return finish(a, r, &reason, what, done);
}

typedef struct Command {
        const char *name;
        int min_args, max_args;
        bool locks; /* takes the store lock and recovers first */
        bool takes_sig, takes_switch_flags;
        int (*run)(Agent *a, char **args);
} Command;

static const Command commands[] = {
        {"status", 0, 0, false, false, false, cmd_status},
        {"verify", 1, 1, false, true, false, cmd_verify},
        {"check", 0, 0, false, false, false, cmd_check},
        {"update", 0, 0, true, false, false, cmd_update},
        {"install", 1, 1, true, true, false, cmd_install},
        {"switch", 0, 1, true, false, true, cmd_switch},
        {"rollback", 0, 0, true, false, false, cmd_rollback},
        {"mark-good", 1, 1, true, false, false, cmd_mark_good},
        {"mark-bad", 1, 1, true, false, false, cmd_mark_bad},
};

static int parse_argv(int argc, char **argv) {
        enum { ARG_JSON = 0x100, ARG_WAIT, ARG_SIG, ARG_NO_RESTART, ARG_FORCE, ARG_VERSION };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"json", no_argument, NULL, ARG_JSON},
                {"quiet", no_argument, NULL, 'q'},
                {"wait", no_argument, NULL, ARG_WAIT},
                {"sig", required_argument, NULL, ARG_SIG},
                {"no-restart", no_argument, NULL, ARG_NO_RESTART},
                {"force", no_argument, NULL, ARG_FORCE},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "c:qh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        opts.config_path = optarg;
                        break;
                case ARG_JSON:
                        opts.json = true;
                        break;
                case 'q':
                        opts.quiet = true;
                        break;
                case ARG_WAIT:
                        opts.wait = true;
                        break;
                case ARG_SIG:
                        opts.sig = optarg;
                        break;
                case ARG_NO_RESTART:
                        opts.no_restart = true;
                        break;
                case ARG_FORCE:
                        opts.force = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_DONE);
                case ARG_VERSION:
                        (void) printf("slotctl " SLOTD_VERSION "\n");
                        exit(EXIT_DONE);
                default:
                        return -EINVAL;
                }
        }
        return 0;
}

int main(int argc, char **argv) {
        Reason reason = REASON_NULL;
        Agent agent = {0};
        _cleanup_(config_freep) Config *config = NULL;

        log_setup("slotctl", false);
        if (parse_argv(argc, argv) < 0) {
                usage(stderr);
                return EXIT_USAGE;
        }
        if (optind >= argc) {
                log_error("no command given (try slotctl --help)");
                return EXIT_USAGE;
        }

        const char *name = argv[optind];
        char **args = argv + optind + 1;
        int n_args = argc - optind - 1;
        const Command *cmd = NULL;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, name) == 0)
                        cmd = &commands[i];
        if (!cmd) {
                log_error("unknown command \"%s\" (try slotctl --help)", name);
                return EXIT_USAGE;
        }
        if (n_args < cmd->min_args || n_args > cmd->max_args) {
                log_error("%s: wrong number of arguments (try slotctl --help)", name);
                return EXIT_USAGE;
        }
        if ((opts.sig && !cmd->takes_sig) ||
            ((opts.no_restart || opts.force) && !cmd->takes_switch_flags)) {
                log_error("%s: option not valid for this command (try slotctl --help)", name);
                return EXIT_USAGE;
        }

        int r = config_load(opts.config_path, log_config_line, NULL, &config);
        if (r < 0) {
                if (r != -EINVAL)
                        log_error("cannot read config %s: %s",
                                  config_resolve_path(opts.config_path), strerror(-r));
                return EXIT_USAGE;
        }

        agent.progress = !opts.quiet && !opts.json && isatty(STDOUT_FILENO);
        agent.echo_hooks = isatty(STDERR_FILENO);
        r = agent_open(&agent, config, &reason);
        if (r < 0) {
                log_error("%s", reason.text);
                return EXIT_FAILED;
        }

        if (cmd->locks) {
                r = store_lock(agent.store, opts.wait);
                if (r == -EWOULDBLOCK) {
                        log_error("store is busy: another operation holds the lock %s/lock "
                                  "(use --wait to wait)",
                                  config->state_dir);
                        agent_close(&agent);
                        return EXIT_BUSY;
                }
                if (r < 0) {
                        log_error("cannot lock store %s/lock: %s", config->state_dir, strerror(-r));
                        agent_close(&agent);
                        return EXIT_FAILED;
                }
                if (op_recover(&agent, &reason) < 0) {
                        log_error("%s", reason.text);
                        agent_close(&agent);
                        return EXIT_FAILED;
                }
        }

        agent.op_start = now_mono();
        int ret = cmd->run(&agent, args);
        /* slotd delivers the events; slotctl tries once so they also go out
         * when slotd is down. */
        if (cmd->locks && config->events_url && outbox_pending(config) > 0) {
                Reason ignored = REASON_NULL;
                (void) outbox_deliver(config, 1000, &ignored);
        }
        op_reap_in_background(&agent);
        agent_close(&agent);
        return ret;
}
