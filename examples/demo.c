/* The original ServerClientModel demo, from C.
 *
 * Build and run:  make c-demo            (or, after `make install PREFIX=/usr/local`:
 *                 cc examples/demo.c $(pkg-config --cflags --libs loadmon) -lpthread -o demo
 *                 && ./demo; outside the linker's default paths add LD_LIBRARY_PATH)
 *                 ./demo --quick         (the same shape in about 5 s, small files)
 *
 * A server and three test clients started 2 s, 4 s and 6 s after it, in threads, with
 * (run time s, chunk MB, file MB) = (20, 10, 100), (12, 15, 80), (15, 25, 50); then the
 * server's report is printed. Pairs with examples/demo.py and `loadmon demo`. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loadmon.h"

struct plan {
    double delay_s;
    int64_t run_time_ms, chunk_mb, file_mb;
};

static const struct plan SEED[3] = {
    {2, 20000, 10, 100}, {4, 12000, 15, 80}, {6, 15000, 25, 50}};
/* Small files and 4 s runs: the seed's probe (2 files must fit in the run time) then needs only
 * 1 MB/s, which even a run under valgrind reaches. */
static const struct plan QUICK[3] = {{0.2, 4000, 1, 2}, {0.4, 4000, 2, 2}, {0.6, 4000, 1, 2}};

struct client {
    LoadmonTestClientConfig cfg;
    char out_dir[128];
    int rc;
    char *result;
    char error[512];
};

static void *run_client(void *arg) {
    struct client *c = arg;
    c->rc = loadmon_test_client_run(&c->cfg, &c->result);
    if (c->rc != LOADMON_OK) {
        const char *e = loadmon_last_error();
        snprintf(c->error, sizeof c->error, "%s: %s", loadmon_status_str(c->rc),
                 e ? e : "unknown error");
    }
    return NULL;
}

static void print_warning(LoadmonLogLevel level, const char *target, const char *message,
                          void *user) {
    (void)user;
    if (level == LOADMON_LOG_WARN) fprintf(stderr, "[%s] %s\n", target, message);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const struct plan *schedule = quick ? QUICK : SEED;

    /* Warnings (a client FAILED or TIMED OUT, a report not written) as they happen. */
    loadmon_set_log_callback(print_warning, NULL);

    LoadmonServerConfig scfg;
    loadmon_server_config_default(&scfg, sizeof scfg);
    scfg.port = 0;
    LoadmonServer *server = NULL;
    if (loadmon_server_start(&scfg, &server) != LOADMON_OK) {
        fprintf(stderr, "demo: %s\n", loadmon_last_error());
        return 1;
    }
    uint16_t port = loadmon_server_port(server);
    printf("loadmon %s: server listening on 127.0.0.1:%u\n", loadmon_version(), port);

    struct client clients[3];
    pthread_t threads[3];
    double start = now_s();
    for (int i = 0; i < 3; i++) {
        double wait = schedule[i].delay_s - (now_s() - start);
        if (wait > 0) usleep((useconds_t)(wait * 1e6));
        struct client *c = &clients[i];
        memset(c, 0, sizeof *c);
        snprintf(c->out_dir, sizeof c->out_dir, "/tmp/loadmon-demo-c-%d-%d", (int)getpid(), i + 1);
        loadmon_test_client_config_default(&c->cfg, sizeof c->cfg);
        c->cfg.port = port;
        c->cfg.run_time_ms = schedule[i].run_time_ms;
        c->cfg.chunk_size_mb = schedule[i].chunk_mb;
        c->cfg.file_size_mb = schedule[i].file_mb;
        c->cfg.out_dir = c->out_dir;
        if (quick) {
            c->cfg.min_chunk_size_mb = 1;
            c->cfg.heartbeat_period_ms = 200;
            c->cfg.stats_period_ms = 400;
        }
        pthread_create(&threads[i], NULL, run_client, c);
        printf("client %d started: %lld ms, %lld MB chunks, %lld MB files\n", i + 1,
               (long long)schedule[i].run_time_ms, (long long)schedule[i].chunk_mb,
               (long long)schedule[i].file_mb);
        fflush(stdout);
    }
    int failures = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        if (clients[i].rc != LOADMON_OK) {
            fprintf(stderr, "client %d failed: %s\n", i + 1, clients[i].error);
            failures++;
        }
        loadmon_string_free(clients[i].result);
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf %s", clients[i].out_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", clients[i].out_dir);
    }

    char *report = NULL, *text = NULL;
    LoadmonStatus rc = loadmon_server_wait(server, 60000, &report);
    if (rc != LOADMON_OK) {
        fprintf(stderr, "demo: %s: %s\n", loadmon_status_str(rc), loadmon_last_error());
        loadmon_server_free(server);
        loadmon_set_log_callback(NULL, NULL);
        return 1;
    }
    /* The warnings logged so far are printed before the report. */
    loadmon_log_flush(5000);
    if (loadmon_report_text(report, &text) == LOADMON_OK) fputs(text, stdout);
    loadmon_string_free(text);
    loadmon_string_free(report);
    loadmon_server_free(server);
    loadmon_set_log_callback(NULL, NULL);
    return failures == 0 ? 0 : 1;
}
