/* hooks.c: hook execution (hooks.h). A hook gets its context only through
 * the environment and never through a shell; its output is forwarded line
 * by line to the journal. */
#include "hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"

#define LINE_MAX_BYTES 4096

static const char *const hook_point_table[_HOOK_POINT_MAX] = {
        [HOOK_PRE_INSTALL] = "pre-install",   [HOOK_POST_INSTALL] = "post-install",
        [HOOK_PRE_SWITCH] = "pre-switch",     [HOOK_POST_SWITCH] = "post-switch",
        [HOOK_HEALTH_CHECK] = "health-check", [HOOK_POST_COMMIT] = "post-commit",
        [HOOK_PRE_ROLLBACK] = "pre-rollback", [HOOK_POST_ROLLBACK] = "post-rollback",
};

const char *hook_point_to_string(HookPoint p) {
        return p >= 0 && p < _HOOK_POINT_MAX ? hook_point_table[p] : NULL;
}

static void forward_line(const char *hook, const char *path, const char *line, bool echo) {
        (void) sd_journal_send("MESSAGE=hook %s: %s", hook, line, "PRIORITY=6", "SLOTD_HOOK=%s",
                               hook, "SLOTD_HOOK_PATH=%s", path, NULL);
        if (echo)
                (void) fprintf(stderr, "%s: %s\n", hook, line);
}

/* Splits what the hook wrote into lines; an overlong line is cut. */
typedef struct LineBuffer {
        char buf[LINE_MAX_BYTES + 1];
        size_t len;
} LineBuffer;

static void line_feed(LineBuffer *lb, const char *data, size_t n, const char *hook,
                      const char *path, bool echo) {
        for (size_t i = 0; i < n; i++) {
                if (data[i] == '\n' || lb->len == LINE_MAX_BYTES) {
                        lb->buf[lb->len] = '\0';
                        forward_line(hook, path, lb->buf, echo);
                        lb->len = 0;
                        if (data[i] == '\n')
                                continue;
                }
                lb->buf[lb->len++] = data[i];
        }
}

static int run_one(const char *hook, const char *path, const HookContext *ctx, Reason *reason) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return reason_fail(reason, -errno, "cannot run hook %s (%s): %s", hook, path,
                                   strerror(errno));

        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                (void) close(pipefd[0]);
                (void) close(pipefd[1]);
                return reason_fail(reason, r, "cannot run hook %s (%s): %s", hook, path,
                                   strerror(-r));
        }
        if (pid == 0) {
                (void) setpgid(0, 0);
                int devnull = open("/dev/null", O_RDONLY);
                if (devnull >= 0)
                        (void) dup2(devnull, STDIN_FILENO);
                (void) dup2(pipefd[1], STDOUT_FILENO);
                (void) dup2(pipefd[1], STDERR_FILENO);
                sigset_t none;
                (void) sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                if (ctx->slot_dir && chdir(ctx->slot_dir) < 0)
                        (void) chdir("/");

                char *env[16];
                size_t n = 0;
                char e[9][600];
                (void) snprintf(e[0], sizeof(e[0]), "SLOTD_HOOK=%s", hook);
                (void) snprintf(e[1], sizeof(e[1]), "SLOTD_FROM_SLOT=%s", ctx->from_slot ?: "");
                (void) snprintf(e[2], sizeof(e[2]), "SLOTD_TO_SLOT=%s", ctx->to_slot ?: "");
                (void) snprintf(e[3], sizeof(e[3]), "SLOTD_FROM_VERSION=%s",
                                ctx->from_version ?: "");
                (void) snprintf(e[4], sizeof(e[4]), "SLOTD_TO_VERSION=%s", ctx->to_version ?: "");
                (void) snprintf(e[5], sizeof(e[5]), "SLOTD_SLOT_DIR=%s", ctx->slot_dir ?: "");
                (void) snprintf(e[6], sizeof(e[6]), "SLOTD_WORKER_ID=%s", ctx->worker_id ?: "");
                (void) snprintf(e[7], sizeof(e[7]), "SLOTD_HOOK_PATH=%s", path);
                (void) snprintf(
                        e[8], sizeof(e[8]),
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
                for (size_t i = 0; i < ELEMENTSOF(e); i++)
                        env[n++] = e[i];
                env[n] = NULL;
                char *argv[] = {(char *) path, NULL};
                execve(path, argv, env);
                (void) dprintf(STDERR_FILENO, "cannot execute: %s\n", strerror(errno));
                _exit(127);
        }

        (void) setpgid(pid, pid); /* also from here: no race with the child's own call */
        (void) close(pipefd[1]);

        LineBuffer lb = {.len = 0};
        uint64_t deadline = now_mono() + ctx->timeout_usec;
        bool timed_out = false;
        for (;;) {
                uint64_t now = now_mono();
                if (now >= deadline) {
                        timed_out = true;
                        break;
                }
                struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
                int ms = (int) ((deadline - now + 999) / 1000);
                int n = poll(&pfd, 1, ms);
                if (n < 0 && errno != EINTR)
                        break;
                if (n <= 0)
                        continue;
                char data[1024];
                ssize_t got = read(pipefd[0], data, sizeof(data));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        break; /* every writer closed: the hook (and its children) ended */
                line_feed(&lb, data, (size_t) got, hook, path, ctx->echo);
        }
        if (lb.len > 0) {
                lb.buf[lb.len] = '\0';
                forward_line(hook, path, lb.buf, ctx->echo);
        }
        (void) close(pipefd[0]);

        if (timed_out)
                (void) kill(-pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (timed_out)
                return reason_fail(reason, -ETIMEDOUT, "hook %s (%s) did not finish within %llu s",
                                   hook, path, (unsigned long long) (ctx->timeout_usec / 1000000));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                return reason_fail(reason, -EIO, "hook %s (%s) exited with status %d", hook, path,
                                   WEXITSTATUS(status));
        return reason_fail(reason, -EIO, "hook %s (%s) was killed by signal %d", hook, path,
                           WTERMSIG(status));
}

/* An executable regular file at path, or nothing to run. */
static bool hook_present(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int hooks_run(HookPoint point, const HookContext *ctx, Reason *reason) {
        const char *hook = hook_point_to_string(point);
        char path[4096];
        int r;

        if (!hook)
                return -EINVAL;
        if (ctx->hooks_dir) {
                (void) snprintf(path, sizeof(path), "%s/%s", ctx->hooks_dir, hook);
                if (hook_present(path) && (r = run_one(hook, path, ctx, reason)) < 0)
                        return r;
        }
        if (ctx->slot_dir && !ctx->no_package_hooks) {
                (void) snprintf(path, sizeof(path), "%s/hooks/%s", ctx->slot_dir, hook);
                if (hook_present(path) && (r = run_one(hook, path, ctx, reason)) < 0)
                        return r;
        }
        return 0;
}
