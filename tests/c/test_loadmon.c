/* C tests of the loadmon ABI: a full run, every error path, a custom workload callback, the
 * guards, status names and version macros, config growth (struct_size), the rules shared with
 * Python and their range messages, timeouts (0 polls, negative waits forever), clients in the
 * background (start, join, cancel, free), and the log callback (a slow one included).
 * Built by `make c-test` with -Wall -Wextra -Werror and ASan + UBSan. Ends with the line
 * "N passed, N failed". Also fleet mode: a server expecting 2 workers and 2 workers; and
 * verified writes (the verify settings, loadmon_verify). */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "loadmon.h"

static int passed, failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            const char *e_ = loadmon_last_error();                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, \
                    #cond, e_ ? e_ : "(none)");                                            \
        }                                                                                  \
    } while (0)

static int count(const char *haystack, const char *needle) {
    int n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

static int last_error_contains(const char *needle) {
    const char *e = loadmon_last_error();
    return e != NULL && strstr(e, needle) != NULL;
}

static char out_dir[256];

static LoadmonTestClientConfig small_client(uint16_t port) {
    LoadmonTestClientConfig c;
    CHECK(loadmon_test_client_config_default(&c, sizeof c) == LOADMON_OK);
    CHECK(c.struct_size == sizeof c);
    c.port = port;
    c.run_time_ms = 1000;
    c.chunk_size_mb = 1;
    c.file_size_mb = 2;
    c.min_chunk_size_mb = 1;
    c.out_dir = out_dir;
    c.heartbeat_period_ms = 100;
    c.stats_period_ms = 200;
    return c;
}

static LoadmonServer *start_server(void) {
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    LoadmonServer *s = NULL;
    int rc = loadmon_server_start(&cfg, &s);
    CHECK(rc == LOADMON_OK && s != NULL);
    return s;
}

struct client_run {
    LoadmonTestClientConfig cfg;
    int rc;
    char *result;
};

static void *client_thread(void *arg) {
    struct client_run *r = arg;
    r->rc = loadmon_test_client_run(&r->cfg, &r->result);
    return NULL;
}

/* Starts a small client against `s` for `run_time_ms` on thread `*t`. */
static void start_client_thread(LoadmonServer *s, int64_t run_time_ms, struct client_run *run,
                                pthread_t *t) {
    run->cfg = small_client(loadmon_server_port(s));
    run->cfg.run_time_ms = run_time_ms;
    run->result = NULL;
    pthread_create(t, NULL, client_thread, run);
}

static void test_full_run(void) {
    LoadmonServer *s = start_server();
    uint16_t port = loadmon_server_port(s);
    CHECK(port != 0);
    struct client_run runs[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        runs[i].cfg = small_client(port);
        runs[i].result = NULL;
        pthread_create(&threads[i], NULL, client_thread, &runs[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
        CHECK(runs[i].rc == LOADMON_OK);
        CHECK(runs[i].result != NULL && strstr(runs[i].result, "\"files_written\"") != NULL);
        loadmon_string_free(runs[i].result);
    }
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK);
    CHECK(report != NULL && count(report, "\"status\": \"PASS\"") == 2);
    CHECK(report != NULL && strstr(report, "\"throughput_mb_s\"") != NULL);
    char *text = NULL;
    CHECK(loadmon_report_text(report, &text) == LOADMON_OK);
    CHECK(text != NULL && count(text, "    Test status:   PASS\n") == 2);
    loadmon_string_free(text);
    char *again = NULL;
    CHECK(loadmon_server_stop(s, &again) == LOADMON_OK);
    CHECK(again != NULL && report != NULL && strcmp(again, report) == 0);
    loadmon_string_free(again);
    loadmon_string_free(report);
    loadmon_server_free(s);
}

static void test_error_paths(void) {
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(NULL, &s) == LOADMON_INVALID_ARGUMENT && s == NULL);
    CHECK(last_error_contains("NULL"));
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    CHECK(loadmon_server_start(&cfg, NULL) == LOADMON_INVALID_ARGUMENT);
    cfg.host = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_INVALID_ARGUMENT && s == NULL);
    CHECK(last_error_contains("host is NULL"));
    cfg.host = "\xff\xfe";
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("UTF-8"));
    cfg.host = "127.0.0.1";
    cfg.max_clients = 0;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG);
    CHECK(last_error_contains("max_clients"));

    /* A port in use: an I/O error naming the address. */
    LoadmonServer *first = start_server();
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = loadmon_server_port(first);
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_IO && s == NULL);
    CHECK(last_error_contains("bind 127.0.0.1:"));
    /* Nobody came: waiting times out. */
    char *report = NULL;
    CHECK(loadmon_server_wait(first, 50, &report) == LOADMON_TIMEOUT && report == NULL);
    CHECK(last_error_contains("still running"));
    CHECK(loadmon_server_stop(first, NULL) == LOADMON_OK);
    loadmon_server_free(first);

    /* NULL handles and strings. */
    loadmon_server_free(NULL);
    loadmon_string_free(NULL);
    CHECK(loadmon_server_config_default(NULL, sizeof cfg) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_server_config_default: cfg is NULL"));
    CHECK(loadmon_test_client_config_default(NULL, sizeof(LoadmonTestClientConfig)) ==
          LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_client_config_default(NULL, sizeof(LoadmonClientConfig)) ==
          LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_port(NULL) == 0);
    CHECK(loadmon_server_wait(NULL, 0, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_stop(NULL, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_snapshot(NULL, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_test_client_run(NULL, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_report_text("not json", &report) == LOADMON_CONFIG);
    CHECK(loadmon_report_text(NULL, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_version() != NULL && strlen(loadmon_version()) > 0);

    /* The seed's validation rules, and other bad settings. */
    LoadmonTestClientConfig c = small_client(1);
    c.min_chunk_size_mb = 10;
    char *result = NULL;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG && result == NULL);
    CHECK(last_error_contains("below the minimum of 10 MB"));
    c = small_client(1);
    c.chunk_size_mb = 4;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("larger than file size"));
    c = small_client(1);
    c.sync = "sometimes";
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("sync must be"));
    c = small_client(1);
    c.out_dir = NULL;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_INVALID_ARGUMENT);
    /* Streams, queue depth and pace: bad values name their bound. */
    c = small_client(1);
    CHECK(c.jobs == 1 && c.iodepth == 1 && c.rate_mb_s == LOADMON_NO_RATE);
    c.jobs = 10000;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("jobs must be from 1 to 256, not 10000"));
    c = small_client(1);
    c.iodepth = 0;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("iodepth must be from 1 to 256, not 0"));
    c = small_client(1);
    c.rate_mb_s = 0.0;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("rate_mb_s must be a number of MB/s above 0 and at most 1000000"));
    c = small_client(1);
    c.rate_mb_s = 2e6;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("at most 1000000, not 2000000"));
    c = small_client(1);
    c.chunk_size_mb = -1;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("chunk_size_mb must be a size from 512 bytes to 4096 MB, not -1 MB"));

    /* An unreachable server: an I/O error after the retry window. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    c = small_client(ntohs(a.sin_port));
    c.connect_timeout_ms = 200;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_IO && result == NULL);
    CHECK(last_error_contains("connect 127.0.0.1:"));

    /* A server that wants a token refuses a client without one: a protocol error. */
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    cfg.token = "s3cret";
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK);
    c = small_client(loadmon_server_port(s));
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_PROTOCOL);
    CHECK(last_error_contains("token"));
    c.token = "s3cret";
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_OK);
    loadmon_string_free(result);
    CHECK(loadmon_server_wait(s, 20000, NULL) == LOADMON_OK);
    loadmon_server_free(s);
}

static void *fresh_thread(void *arg) {
    (void)arg;
    return (void *)loadmon_last_error();
}

static void test_last_error_is_per_thread(void) {
    pthread_t t;
    void *seen = (void *)1;
    pthread_create(&t, NULL, fresh_thread, NULL);
    pthread_join(t, &seen);
    CHECK(seen == NULL);
}

struct workload_state {
    uint32_t client_id;
    int rollovers;
    int fail;
};

static int run_tests(LoadmonClientContext *ctx, void *user_data) {
    struct workload_state *st = user_data;
    st->client_id = loadmon_client_context_id(ctx);
    if (st->fail) {
        loadmon_client_context_set_error(ctx, "the C workload gave up");
        return 1;
    }
    while (!loadmon_client_context_time_is_up(ctx)) {
        usleep(20000);
        loadmon_client_context_record_write(ctx, 1 << 20, 1500);
        loadmon_client_context_file_rollover(ctx);
        st->rollovers++;
    }
    if (loadmon_client_context_send_stats(ctx, -1.0, 0.5) != LOADMON_CONFIG) return 2;
    if (loadmon_client_context_send_stats(ctx, 12.5, 0.5) != LOADMON_OK) return 3;
    if (loadmon_client_context_remaining_ms(ctx) != 0) return 4;
    return 0;
}

static void test_custom_workload(void) {
    LoadmonServer *s = start_server();
    LoadmonClientConfig cfg;
    CHECK(loadmon_client_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    CHECK(cfg.run_time_ms == LOADMON_NO_RUN_TIME && cfg.chunk_size_mb == LOADMON_NO_FILE_STATS);
    cfg.port = loadmon_server_port(s);
    cfg.run_time_ms = 400;
    cfg.heartbeat_period_ms = 50;
    cfg.stats_period_ms = 100;
    cfg.chunk_size_mb = 1;
    cfg.file_size_mb = 1;
    struct workload_state st = {0, 0, 0};
    char *result = NULL;
    CHECK(loadmon_client_run(&cfg, run_tests, &st, &result) == LOADMON_OK);
    CHECK(st.client_id == 100 && st.rollovers >= 5);
    CHECK(result != NULL && strstr(result, "\"client_id\": 100") != NULL);
    loadmon_string_free(result);
    CHECK(loadmon_client_run(&cfg, NULL, &st, &result) == LOADMON_INVALID_ARGUMENT);
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK);
    CHECK(report != NULL && count(report, "\"status\": \"PASS\"") == 1);
    char files[64];
    snprintf(files, sizeof files, "\"files_written\": %d", st.rollovers);
    CHECK(report != NULL && strstr(report, files) != NULL);
    loadmon_string_free(report);
    loadmon_server_free(s);

    /* A callback that fails: LOADMON_WORKLOAD here, FAILED with the reason on the server. */
    s = start_server();
    cfg.port = loadmon_server_port(s);
    st.fail = 1;
    CHECK(loadmon_client_run(&cfg, run_tests, &st, &result) == LOADMON_WORKLOAD);
    CHECK(last_error_contains("the C workload gave up"));
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK);
    CHECK(report != NULL && strstr(report, "\"status\": \"FAILED\"") != NULL);
    CHECK(report != NULL &&
          strstr(report, "\"reason\": \"workload failed: the C workload gave up\"") != NULL);
    loadmon_string_free(report);
    loadmon_server_free(s);
}

static void test_snapshot_and_stop_mid_run(void) {
    LoadmonServer *s = start_server();
    struct client_run run;
    pthread_t t;
    start_client_thread(s, 30000, &run, &t);
    char *snap = NULL;
    int running = 0;
    for (int i = 0; i < 500 && !running; i++) {
        usleep(20000);
        CHECK(loadmon_server_snapshot(s, &snap) == LOADMON_OK);
        running = snap != NULL && strstr(snap, "\"status\":\"RUNNING\"") != NULL;
        loadmon_string_free(snap);
    }
    CHECK(running);
    char *report = NULL;
    CHECK(loadmon_server_stop(s, &report) == LOADMON_OK);
    CHECK(report != NULL && strstr(report, "\"reason\": \"server stopped\"") != NULL);
    loadmon_string_free(report);
    pthread_join(t, NULL);
    CHECK(run.rc == LOADMON_IO && run.result == NULL);
    loadmon_server_free(s);
}

/* GET `path` from 127.0.0.1:`port` (HTTP/1.0) with `Host: host`; the whole response in
 * `buf`. */
static int http_get_host(uint16_t port, const char *path, const char *host, char *buf,
                         size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while (len + 1 < cap && (r = read(fd, buf + len, cap - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fd);
    return (int)len;
}

/* GET `path` from 127.0.0.1:`port` (HTTP/1.0); the whole response in `buf`. */
static int http_get(uint16_t port, const char *path, char *buf, size_t cap) {
    return http_get_host(port, path, "127.0.0.1", buf, cap);
}

/* DNS rebinding: the HTTP listener answers the names of http_allow_hosts (a NULL-ended
 * array), IP addresses and localhost; another name gets 421. */
static void test_http_allow_hosts(void) {
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    CHECK(cfg.http_allow_hosts == NULL);
    const char *bad[] = {"no spaces please", NULL};
    cfg.port = 0;
    cfg.http = "127.0.0.1:0";
    cfg.http_allow_hosts = bad;
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("http_allow_hosts"));
    const char *names[] = {"loadmon.example", "second.example", NULL};
    cfg.http_allow_hosts = names;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s == NULL) return;
    uint16_t http = loadmon_server_http_port(s);
    static char buf[65536];
    CHECK(http_get_host(http, "/api/server", "loadmon.example", buf, sizeof buf) > 0);
    CHECK(strstr(buf, " 200 OK") != NULL);
    CHECK(http_get_host(http, "/api/server", "second.example:80", buf, sizeof buf) > 0);
    CHECK(strstr(buf, " 200 OK") != NULL);
    CHECK(http_get_host(http, "/api/report", "evil.example", buf, sizeof buf) > 0);
    CHECK(strstr(buf, " 421 ") != NULL && strstr(buf, "--http-allow-host") != NULL);
    CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
    loadmon_server_free(s);
}

static void test_http_and_reports(void) {
    char html_path[300], csv_path[300];
    snprintf(html_path, sizeof html_path, "%s-report.html", out_dir);
    snprintf(csv_path, sizeof csv_path, "%s-report.csv", out_dir);
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    CHECK(cfg.http == NULL && cfg.report_html_path == NULL && cfg.report_csv_path == NULL);
    cfg.port = 0;
    cfg.http = "127.0.0.1:0";
    cfg.report_html_path = html_path;
    cfg.report_csv_path = csv_path;
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s == NULL) return;
    LoadmonEvents *events = NULL;
    CHECK(loadmon_server_events(s, &events) == LOADMON_OK && events != NULL);
    uint16_t http = loadmon_server_http_port(s);
    CHECK(http != 0 && http != loadmon_server_port(s));
    /* The HTTP listener lives as long as the run: ask while the client writes. */
    struct client_run run;
    pthread_t t;
    start_client_thread(s, 3000, &run, &t);
    static char buf[65536];
    int seen = 0;
    for (int i = 0; i < 500 && !seen; i++) {
        usleep(20000);
        seen = http_get(http, "/metrics", buf, sizeof buf) > 0 &&
               strstr(buf, "loadmon_client_files_written_total{client_id=\"100\"}") != NULL;
    }
    CHECK(seen);
    CHECK(strstr(buf, "200 OK") != NULL);
    CHECK(strstr(buf, "# TYPE loadmon_messages_total counter") != NULL);
    CHECK(http_get(http, "/api/clients", buf, sizeof buf) > 0);
    CHECK(strstr(buf, "\"id\":100") != NULL && strstr(buf, "\"last_heartbeat_age_s\"") != NULL);
    pthread_join(t, NULL);
    CHECK(run.rc == LOADMON_OK);
    loadmon_string_free(run.result);
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK);
    loadmon_string_free(report);
    /* Every event, from the connection to the final report, then the end (NULL). */
    int n = 0, rollovers = 0, first_ok = 0, last_report = 0, ended = 0, rc = LOADMON_OK;
    for (int i = 0; i < 1000000 && !ended; i++) {
        char *ev = NULL;
        rc = loadmon_events_next(events, 5000, &ev);
        if (rc != LOADMON_OK) break;
        if (ev == NULL) {
            ended = 1;
            break;
        }
        if (n == 0) first_ok = strstr(ev, "\"event\":\"client_connected\"") != NULL;
        rollovers += strstr(ev, "\"event\":\"file_rollover\"") != NULL;
        last_report = strstr(ev, "\"event\":\"report\"") != NULL;
        n++;
        loadmon_string_free(ev);
    }
    CHECK(rc == LOADMON_OK && ended);
    CHECK(n > 3 && first_ok && last_report && rollovers > 0);
    loadmon_events_free(events);
    loadmon_server_free(s);
    FILE *f = fopen(html_path, "r");
    CHECK(f != NULL);
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strstr(buf, "<svg") != NULL && strstr(buf, "<td>100</td>") != NULL);
    }
    f = fopen(csv_path, "r");
    CHECK(f != NULL);
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strncmp(buf, "id,status,", 10) == 0 && strstr(buf, "\n100,PASS,") != NULL);
    }
    remove(html_path);
    remove(csv_path);
    /* A NULL http server has no HTTP port. */
    CHECK(loadmon_server_http_port(NULL) == 0);
    /* Events: a timeout while nothing happens, NULL arguments refused, free(NULL) a no-op. */
    s = start_server();
    events = NULL;
    CHECK(loadmon_server_events(s, &events) == LOADMON_OK);
    char *ev = NULL;
    CHECK(loadmon_events_next(events, 50, &ev) == LOADMON_TIMEOUT && ev == NULL);
    CHECK(last_error_contains("no event within 50 ms"));
    CHECK(loadmon_events_next(events, 50, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_events_next(NULL, 50, &ev) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_events(NULL, &events) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_events(s, NULL) == LOADMON_INVALID_ARGUMENT);
    char *stopped = NULL;
    CHECK(loadmon_server_stop(s, &stopped) == LOADMON_OK);
    loadmon_string_free(stopped);
    CHECK(loadmon_events_next(events, 5000, &ev) == LOADMON_OK && ev != NULL &&
          strstr(ev, "\"event\":\"report\"") != NULL);
    loadmon_string_free(ev);
    CHECK(loadmon_events_next(events, 5000, &ev) == LOADMON_OK && ev == NULL);
    loadmon_events_free(events);
    loadmon_events_free(NULL);
    loadmon_server_free(s);
}

/* A report file that cannot be written: a path under a regular file is refused before the
 * run; a directory that breaks during the run makes stop return LOADMON_IO, and the report is
 * still there through loadmon_server_report. */
static void test_report_survives_its_files(void) {
    char blocker[300], bad[330], sub[300], json_path[330], cmd[700];
    snprintf(blocker, sizeof blocker, "%s-blocker", out_dir);
    FILE *f = fopen(blocker, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    snprintf(bad, sizeof bad, "%s/r.json", blocker);
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    cfg.report_json_path = bad;
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("r.json"));

    snprintf(sub, sizeof sub, "%s-sub", out_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", sub);
    CHECK(system(cmd) == 0);
    snprintf(json_path, sizeof json_path, "%s/r.json", sub);
    cfg.report_json_path = json_path;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s == NULL) return;
    snprintf(cmd, sizeof cmd, "rm -rf %s && touch %s", sub, sub);
    CHECK(system(cmd) == 0);
    char *report = NULL;
    CHECK(loadmon_server_stop(s, &report) == LOADMON_IO && report == NULL);
    CHECK(last_error_contains("r.json"));
    CHECK(loadmon_server_report(s, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && strstr(report, "\"stopped\": true") != NULL);
    loadmon_string_free(report);
    CHECK(loadmon_server_report(NULL, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_report(s, NULL) == LOADMON_INVALID_ARGUMENT);
    loadmon_server_free(s);
    remove(sub);
    remove(blocker);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A loopback port nobody listens on. */
static uint16_t dead_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* Every status has a distinct name; an unknown number is safe. The version macros are the
 * library's version. */
static void test_status_names_and_version(void) {
    const char *names[9];
    for (int i = LOADMON_OK; i <= LOADMON_STATE; i++) {
        names[i] = loadmon_status_str(i);
        CHECK(names[i] != NULL && strcmp(names[i], "unknown status") != 0);
        for (int j = 0; j < i; j++) CHECK(strcmp(names[i], names[j]) != 0);
    }
    CHECK(strcmp(loadmon_status_str(LOADMON_OK), "ok") == 0);
    CHECK(strcmp(loadmon_status_str(LOADMON_TIMEOUT), "timeout") == 0);
    CHECK(strcmp(loadmon_status_str(42), "unknown status") == 0);
    CHECK(strcmp(loadmon_status_str(-1), "unknown status") == 0);
    char v[64];
    snprintf(v, sizeof v, "%d.%d.%d", LOADMON_VERSION_MAJOR, LOADMON_VERSION_MINOR,
             LOADMON_VERSION_PATCH);
    CHECK(strcmp(v, loadmon_version()) == 0);
}

/* The guards: NULL arguments to every context function, the getters' documented values, the
 * function's name in the message. */
static void test_guards(void) {
    CHECK(loadmon_client_context_id(NULL) == 0);
    CHECK(last_error_contains("loadmon_client_context_id: ctx is NULL"));
    CHECK(loadmon_client_context_time_is_up(NULL) == 1);
    CHECK(last_error_contains("loadmon_client_context_time_is_up: ctx is NULL"));
    CHECK(loadmon_client_context_remaining_ms(NULL) == -1);
    CHECK(last_error_contains("loadmon_client_context_remaining_ms: ctx is NULL"));
    CHECK(loadmon_client_context_file_rollover(NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_client_context_file_rollover: ctx is NULL"));
    CHECK(loadmon_client_context_record_write(NULL, 1, 1) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_client_context_record_write: ctx is NULL"));
    CHECK(loadmon_client_context_send_stats(NULL, 1, 1) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_client_context_set_error(NULL, "x") == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_server_port(NULL) == 0);
    CHECK(last_error_contains("loadmon_server_port: server is NULL"));
    CHECK(loadmon_server_http_port(NULL) == 0);
    CHECK(loadmon_server_report(NULL, NULL) == LOADMON_INVALID_ARGUMENT);
    loadmon_string_free(NULL);
    loadmon_events_free(NULL);
    loadmon_server_free(NULL);
    CHECK(loadmon_set_log_callback(NULL, NULL) == LOADMON_OK);
}

/* Config structs grow: a smaller (older) struct is read only up to its struct_size, the
 * missing fields take their defaults; _default writes only struct_size bytes; a larger
 * struct_size (a newer header) or none at all is refused. */
static void test_config_growth(void) {
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    CHECK(cfg.struct_size == sizeof cfg && cfg.port == 1234 &&
          cfg.max_clients == LOADMON_AUTO_MAX_CLIENTS);
    cfg.port = 0;
    /* An "older" struct that ends before the token: the fields after it hold junk (invalid
     * UTF-8, which would be LOADMON_INVALID_ARGUMENT if read) and are not read. */
    cfg.struct_size = offsetof(LoadmonServerConfig, token);
    cfg.token = cfg.log_dir = cfg.http = cfg.report_csv_path = cfg.report_html_path = "\xff";
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        CHECK(loadmon_server_http_port(s) == 0);
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }
    /* The same junk within struct_size is read, and refused. */
    cfg.struct_size = sizeof cfg;
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_INVALID_ARGUMENT && s == NULL);
    CHECK(last_error_contains("token is not valid UTF-8"));

    /* An older struct that ends before the fleet fields: junk there (an expect_clients of 0,
     * which is LOADMON_CONFIG if read, invalid UTF-8) is not read; no fleet mode. */
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    cfg.struct_size = offsetof(LoadmonServerConfig, expect_clients);
    cfg.expect_clients = 0;
    cfg.start_timeout_ms = -7;
    cfg.plan_sync = "\xff";
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        char *r = NULL;
        CHECK(loadmon_server_stop(s, &r) == LOADMON_OK);
        CHECK(r != NULL && strstr(r, "\"expected_clients\": null") != NULL);
        loadmon_string_free(r);
        loadmon_server_free(s);
    }
    cfg.struct_size = sizeof cfg;
    cfg.plan_sync = NULL;
    cfg.start_timeout_ms = LOADMON_NO_START_TIMEOUT;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG);
    CHECK(last_error_contains("expect_clients"));
    /* A worker config of an older size: the fields it lacks take their defaults. */
    LoadmonWorkerConfig wold;
    CHECK(loadmon_worker_config_default(&wold, offsetof(LoadmonWorkerConfig, log_dir)) ==
          LOADMON_OK);
    CHECK(wold.struct_size == offsetof(LoadmonWorkerConfig, log_dir));
    wold.log_dir = "\xff";
    wold.port = dead_port();
    wold.connect_timeout_ms = 0;
    CHECK(loadmon_worker_run(&wold, NULL) == LOADMON_IO); /* log_dir not read */

    /* _default with an older size writes that many bytes and no more. */
    unsigned char buf[sizeof(LoadmonTestClientConfig) + 16];
    memset(buf, 0xab, sizeof buf);
    size_t older = offsetof(LoadmonTestClientConfig, keep_files);
    CHECK(loadmon_test_client_config_default((LoadmonTestClientConfig *)(void *)buf, older) ==
          LOADMON_OK);
    LoadmonTestClientConfig tc;
    memcpy(&tc, buf, sizeof tc);
    CHECK(tc.struct_size == older && tc.run_time_ms == 15000 && tc.chunk_size_mb == 10);
    int untouched = 1;
    for (size_t i = older; i < sizeof buf; i++) untouched &= buf[i] == 0xab;
    CHECK(untouched);

    /* A struct_size from a newer header, or a struct never initialised. */
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg + 8) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("newer"));
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.struct_size = sizeof cfg + 8;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_INVALID_ARGUMENT);
    cfg.struct_size = 0;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("struct_size 0"));
}

/* The rules are the core's, as in Python: out-of-range numbers are LOADMON_CONFIG naming the
 * field, keep_files 0 is an error and LOADMON_KEEP_ALL keeps all, connect_timeout_ms 0 is one
 * attempt while a zero period is refused, a half-set file_stats is an error, a huge run time is
 * refused rather than hanging. */
static void test_rules_like_python(void) {
    uint16_t nobody = dead_port();
    char *result = NULL;
    LoadmonTestClientConfig c = small_client(nobody);
    c.keep_files = 0;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG && result == NULL);
    CHECK(last_error_contains("keep_files"));
    c.keep_files = -5;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("keep_files"));
    /* Keep all, and no retry: the settings pass, the connection fails at once. */
    c.keep_files = LOADMON_KEEP_ALL;
    c.connect_timeout_ms = 0;
    double t0 = now_s();
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_IO);
    CHECK(now_s() - t0 < 3.0);
    c = small_client(nobody);
    c.heartbeat_period_ms = 0;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("heartbeat_period"));
    c = small_client(nobody);
    c.port = 70000;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("port must be from 1 to 65535, not 70000"));
    c.port = -1;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    c = small_client(nobody);
    c.chunk_size_mb = -10;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("chunk_size_mb"));
    c = small_client(nobody);
    c.run_time_ms = 0;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("run_time"));
    c.run_time_ms = INT64_MAX;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("run_time_ms"));
    c = small_client(nobody);
    c.stats_period_ms = (int64_t)1000000000000001LL; /* above 10^9 s */
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_CONFIG);

    LoadmonServerConfig sc;
    CHECK(loadmon_server_config_default(&sc, sizeof sc) == LOADMON_OK);
    sc.port = 0;
    LoadmonServer *s = NULL;
    sc.max_clients = -1;
    CHECK(loadmon_server_start(&sc, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("max_clients"));
    sc.max_clients = 5;
    sc.heartbeat_timeout_ms = 0;
    CHECK(loadmon_server_start(&sc, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("heartbeat_timeout"));
    sc.heartbeat_timeout_ms = 15000;
    sc.first_client_id = 5000000000LL;
    CHECK(loadmon_server_start(&sc, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("first_client_id"));
}

static int never_called(LoadmonClientContext *ctx, void *user_data) {
    (void)ctx;
    (void)user_data;
    return 99;
}

static void test_file_stats_pairs(void) {
    uint16_t nobody = dead_port();
    LoadmonClientConfig g;
    CHECK(loadmon_client_config_default(&g, sizeof g) == LOADMON_OK);
    g.port = nobody;
    g.connect_timeout_ms = 0;
    char *result = NULL;
    g.file_size_mb = 50; /* chunk_size_mb left unset: half a pair, not (0, 50) */
    CHECK(loadmon_client_run(&g, never_called, NULL, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("both or neither"));
    g.chunk_size_mb = 0;
    CHECK(loadmon_client_run(&g, never_called, NULL, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("chunk_size"));
    g.chunk_size_mb = 10;
    g.run_time_ms = 0;
    CHECK(loadmon_client_run(&g, never_called, NULL, &result) == LOADMON_CONFIG);
    CHECK(last_error_contains("run_time_ms"));
    /* Both set, a run time: the settings pass, the connection fails (one attempt). */
    g.run_time_ms = 1000;
    CHECK(loadmon_client_run(&g, never_called, NULL, &result) == LOADMON_IO && result == NULL);
}

struct stopper {
    LoadmonServer *server;
    useconds_t delay_us;
};

static void *stop_later(void *arg) {
    struct stopper *st = arg;
    usleep(st->delay_us);
    char *report = NULL;
    loadmon_server_stop(st->server, &report);
    loadmon_string_free(report);
    return NULL;
}

/* timeout_ms: 0 polls (returns at once), negative waits as long as it takes. */
static void test_timeouts(void) {
    LoadmonServer *s = start_server();
    if (s == NULL) return;
    LoadmonEvents *events = NULL;
    CHECK(loadmon_server_events(s, &events) == LOADMON_OK);
    char *report = NULL, *ev = NULL;
    double t0 = now_s();
    CHECK(loadmon_server_wait(s, 0, &report) == LOADMON_TIMEOUT && report == NULL);
    CHECK(loadmon_events_next(events, 0, &ev) == LOADMON_TIMEOUT && ev == NULL);
    CHECK(now_s() - t0 < 1.0);
    /* Forever: returns once another thread stops the server. */
    struct stopper st = {s, 300000};
    pthread_t t;
    pthread_create(&t, NULL, stop_later, &st);
    t0 = now_s();
    CHECK(loadmon_server_wait(s, LOADMON_WAIT_FOREVER, &report) == LOADMON_OK && report != NULL);
    CHECK(now_s() - t0 >= 0.2);
    pthread_join(t, NULL);
    loadmon_string_free(report);
    CHECK(loadmon_events_next(events, -5, &ev) == LOADMON_OK && ev != NULL &&
          strstr(ev, "\"event\":\"report\"") != NULL);
    loadmon_string_free(ev);
    CHECK(loadmon_events_next(events, LOADMON_WAIT_FOREVER, &ev) == LOADMON_OK && ev == NULL);
    /* A stopped server: a poll gets the report at once. */
    CHECK(loadmon_server_wait(s, 0, &report) == LOADMON_OK && report != NULL);
    loadmon_string_free(report);
    loadmon_events_free(events);
    loadmon_server_free(s);
}

/* The log callback. */
struct log_seen {
    pthread_mutex_t lock;
    int server, client, report, warn, other, bad_level, reentry, flush_reentry;
    char report_text[8192];
};

static void on_log(LoadmonLogLevel level, const char *target, const char *message, void *user) {
    struct log_seen *seen = user;
    pthread_mutex_lock(&seen->lock);
    if (level != LOADMON_LOG_INFO && level != LOADMON_LOG_WARN) seen->bad_level++;
    if (level == LOADMON_LOG_WARN) seen->warn++;
    if (strcmp(target, "loadmon::server") == 0) {
        seen->server++;
    } else if (strcmp(target, "loadmon::client") == 0) {
        seen->client++;
    } else if (strcmp(target, "loadmon::report") == 0) {
        seen->report++;
        snprintf(seen->report_text, sizeof seen->report_text, "%s", message);
    } else {
        seen->other++;
    }
    /* Replacing the callback from inside it is refused (it would deadlock). */
    if (seen->reentry == 0) seen->reentry = (int)loadmon_set_log_callback(NULL, NULL) + 100;
    /* So is waiting for its own deliveries; reading the dropped count is fine. */
    if (seen->flush_reentry == 0) seen->flush_reentry = (int)loadmon_log_flush(0) + 100;
    (void)loadmon_log_dropped();
    pthread_mutex_unlock(&seen->lock);
}

static void test_log_callback(void) {
    static struct log_seen seen;
    memset(&seen, 0, sizeof seen);
    pthread_mutex_init(&seen.lock, NULL);
    CHECK(loadmon_set_log_callback(on_log, &seen) == LOADMON_OK);
    LoadmonServer *s = start_server();
    if (s == NULL) return;
    struct client_run run;
    pthread_t t;
    start_client_thread(s, 1000, &run, &t);
    pthread_join(t, NULL);
    CHECK(run.rc == LOADMON_OK);
    loadmon_string_free(run.result);
    CHECK(loadmon_server_wait(s, 20000, NULL) == LOADMON_OK);
    loadmon_server_free(s);
    /* Records reach the callback on a thread of their own: flush waits until every record
     * logged so far has been delivered. */
    CHECK(loadmon_log_flush(10000) == LOADMON_OK);
    pthread_mutex_lock(&seen.lock);
    CHECK(seen.report == 1);
    pthread_mutex_unlock(&seen.lock);
    CHECK(loadmon_set_log_callback(NULL, NULL) == LOADMON_OK);
    CHECK(loadmon_log_flush(0) == LOADMON_OK); /* no callback: nothing to wait for */
    pthread_mutex_lock(&seen.lock);
    CHECK(seen.server > 2 && seen.client > 2 && seen.other == 0 && seen.bad_level == 0);
    CHECK(seen.report == 1);
    CHECK(seen.flush_reentry == 100 + LOADMON_STATE);
    CHECK(strstr(seen.report_text, "Test status:   PASS") != NULL &&
          strchr(seen.report_text, '\n') != NULL);
    CHECK(seen.reentry == 100 + LOADMON_STATE);
    int before = seen.server + seen.client + seen.report;
    pthread_mutex_unlock(&seen.lock);
    /* Removed: nothing more arrives. */
    s = start_server();
    if (s) {
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }
    pthread_mutex_lock(&seen.lock);
    CHECK(seen.server + seen.client + seen.report == before);
    pthread_mutex_unlock(&seen.lock);
    pthread_mutex_destroy(&seen.lock);
}

/* Fleet mode: a server expecting 2 workers, 2 workers started from C; a staying worker
 * cancelled while it waits for the start; the bad values and NULLs. */
static LoadmonWorkerConfig small_worker(uint16_t port, const char *dir) {
    LoadmonWorkerConfig c;
    CHECK(loadmon_worker_config_default(&c, sizeof c) == LOADMON_OK);
    CHECK(c.struct_size == sizeof c && c.stay == 0 && c.retry_max_ms == 5000);
    CHECK(c.max_chunk_mb == 256 && c.max_run_time_ms == 86400000 && c.max_disk_mb == 10240);
    CHECK(c.out_dir != NULL && strcmp(c.out_dir, "client_files") == 0 && c.log_dir == NULL);
    c.port = port;
    c.out_dir = dir;
    c.heartbeat_period_ms = 100;
    c.stats_period_ms = 200;
    return c;
}

static LoadmonServerConfig fleet_server_config(int64_t expect) {
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    cfg.expect_clients = expect;
    cfg.plan_run_time_ms = 1000;
    cfg.plan_chunk_size_mb = 1;
    cfg.plan_file_size_mb = 2;
    cfg.plan_min_chunk_size_mb = 1;
    return cfg;
}

/* Waits until the server has `n` clients (by the snapshot); whether it did. */
static int wait_for_clients(LoadmonServer *s, int n) {
    for (int i = 0; i < 1000; i++) {
        char *snap = NULL;
        if (loadmon_server_snapshot(s, &snap) != LOADMON_OK) return 0;
        int seen = count(snap, "\"id\":");
        loadmon_string_free(snap);
        if (seen >= n) return 1;
        usleep(20000);
    }
    return 0;
}

static void test_fleet(void) {
    LoadmonServerConfig d;
    CHECK(loadmon_server_config_default(&d, sizeof d) == LOADMON_OK);
    CHECK(d.expect_clients == LOADMON_NO_FLEET && d.start_timeout_ms == LOADMON_NO_START_TIMEOUT);
    CHECK(d.plan_run_time_ms == 15000 && d.plan_chunk_size_mb == 10 && d.plan_file_size_mb == 50);
    CHECK(d.plan_min_chunk_size_mb == 10 && d.plan_sync == NULL && d.plan_keep_files == 2);

    LoadmonServerConfig cfg = fleet_server_config(2);
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s == NULL) return;
    char dirs[2][300];
    LoadmonWorker *w[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s-w%d", out_dir, i);
        LoadmonWorkerConfig wc = small_worker(loadmon_server_port(s), dirs[i]);
        CHECK(loadmon_worker_start(&wc, &w[i]) == LOADMON_OK && w[i] != NULL);
    }
    for (int i = 0; i < 2; i++) {
        char *summary = NULL;
        CHECK(loadmon_worker_join(w[i], 60000, &summary) == LOADMON_OK && summary != NULL);
        CHECK(summary != NULL && strstr(summary, "\"passed\": 1") != NULL);
        CHECK(summary != NULL && strstr(summary, "\"chunk_size_bytes\": 1048576") != NULL);
        CHECK(summary != NULL && strstr(summary, "\"file_size_bytes\": 2097152") != NULL);
        loadmon_string_free(summary);
        /* Joining again gives the same outcome. */
        CHECK(loadmon_worker_join(w[i], 0, NULL) == LOADMON_OK);
        CHECK(loadmon_worker_cancel(w[i]) == LOADMON_OK);
        loadmon_worker_free(w[i]);
    }
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && count(report, "\"status\": \"PASS\"") == 2);
    CHECK(report != NULL && strstr(report, "\"expected_clients\": 2") != NULL);
    CHECK(report != NULL && strstr(report, "\"started_clients\": 2") != NULL);
    CHECK(report != NULL && count(report, "\"chunk_size_mb\": 1,") == 2);
    char *text = NULL;
    CHECK(report != NULL && loadmon_report_text(report, &text) == LOADMON_OK);
    CHECK(text != NULL && strstr(text, "Fleet: 2 of 2 expected client(s) started together") != NULL);
    loadmon_string_free(text);
    loadmon_string_free(report);
    loadmon_server_free(s);
    for (int i = 0; i < 2; i++) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dirs[i]);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dirs[i]);
    }

    /* A staying worker waits for a fleet of 2 that never fills: join times out, cancel ends it
     * with its summary (no run). A worker run to the end (loadmon_worker_run) cannot stay. */
    cfg = fleet_server_config(2);
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s == NULL) return;
    LoadmonWorkerConfig wc = small_worker(loadmon_server_port(s), out_dir);
    wc.stay = 1;
    wc.retry_max_ms = 200;
    char *summary = NULL;
    CHECK(loadmon_worker_run(&wc, &summary) == LOADMON_INVALID_ARGUMENT && summary == NULL);
    CHECK(last_error_contains("loadmon_worker_start"));
    LoadmonWorker *stay = NULL;
    CHECK(loadmon_worker_start(&wc, &stay) == LOADMON_OK && stay != NULL);
    CHECK(wait_for_clients(s, 1));
    CHECK(loadmon_worker_join(stay, 0, &summary) == LOADMON_TIMEOUT && summary == NULL);
    double t0 = now_s();
    CHECK(loadmon_worker_cancel(stay) == LOADMON_OK);
    CHECK(loadmon_worker_join(stay, 10000, &summary) == LOADMON_OK && summary != NULL);
    CHECK(now_s() - t0 < 1.5);
    CHECK(summary != NULL && strstr(summary, "\"passed\": 0") != NULL &&
          strstr(summary, "\"last\": null") != NULL);
    loadmon_string_free(summary);
    loadmon_worker_free(stay);
    /* A worker left running is cancelled by _free. */
    stay = NULL;
    CHECK(loadmon_worker_start(&wc, &stay) == LOADMON_OK && stay != NULL);
    t0 = now_s();
    loadmon_worker_free(stay);
    CHECK(now_s() - t0 < 1.5);
    CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
    loadmon_server_free(s);

    /* A worker against a server outside fleet mode: refused (no plan), a protocol error. */
    s = start_server();
    if (s == NULL) return;
    wc = small_worker(loadmon_server_port(s), out_dir);
    summary = NULL;
    CHECK(loadmon_worker_run(&wc, &summary) == LOADMON_PROTOCOL && summary == NULL);
    CHECK(last_error_contains("not in fleet mode"));
    CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
    loadmon_server_free(s);
}

/* A slow log callback (1.5 s a record) does not stall the engine: records reach it from a
 * bounded queue on a thread of their own, so a healthy client still passes against a server
 * with a 1 s heartbeat timeout. Removing the callback waits (boundedly) for the queue and for
 * the call under way: no call after it returns. */
struct slow_log {
    int calls;    /* atomic */
    int in_call;  /* atomic: a call is under way */
    int overlap;  /* atomic: two calls at once */
};

static void on_log_slow(LoadmonLogLevel level, const char *target, const char *message,
                        void *user) {
    (void)level;
    (void)target;
    (void)message;
    struct slow_log *sl = user;
    if (__atomic_fetch_add(&sl->in_call, 1, __ATOMIC_SEQ_CST) != 0)
        __atomic_store_n(&sl->overlap, 1, __ATOMIC_SEQ_CST);
    usleep(1500000);
    __atomic_fetch_add(&sl->calls, 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_sub(&sl->in_call, 1, __ATOMIC_SEQ_CST);
}

static void test_slow_log_callback(void) {
    static struct slow_log sl;
    memset(&sl, 0, sizeof sl);
    uint64_t dropped = loadmon_log_dropped();
    CHECK(loadmon_set_log_callback(on_log_slow, &sl) == LOADMON_OK);
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    cfg.port = 0;
    cfg.heartbeat_timeout_ms = 1000;
    LoadmonServer *s = NULL;
    double t0 = now_s();
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    /* Starting did not wait for the callback (which sleeps 1.5 s on the first record). */
    CHECK(now_s() - t0 < 1.0);
    if (s == NULL) return;
    struct client_run run;
    pthread_t t;
    start_client_thread(s, 1000, &run, &t);
    pthread_join(t, NULL);
    CHECK(run.rc == LOADMON_OK);
    loadmon_string_free(run.result);
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && count(report, "\"status\": \"PASS\"") == 1);
    CHECK(report != NULL && strstr(report, "TIMED OUT") == NULL);
    loadmon_string_free(report);
    loadmon_server_free(s);
    /* Records still wait for the callback. */
    CHECK(loadmon_log_flush(0) == LOADMON_TIMEOUT);
    /* Removing it: the queue is delivered for about a second, the rest dropped and counted;
     * once this returns, no call is under way and none comes. */
    t0 = now_s();
    CHECK(loadmon_set_log_callback(NULL, NULL) == LOADMON_OK);
    CHECK(now_s() - t0 < 6.0);
    CHECK(loadmon_log_dropped() > dropped);
    CHECK(__atomic_load_n(&sl.in_call, __ATOMIC_SEQ_CST) == 0);
    int calls = __atomic_load_n(&sl.calls, __ATOMIC_SEQ_CST);
    CHECK(calls >= 1);
    usleep(200000);
    CHECK(__atomic_load_n(&sl.calls, __ATOMIC_SEQ_CST) == calls);
    CHECK(__atomic_load_n(&sl.overlap, __ATOMIC_SEQ_CST) == 0);
}

/* Every range message names the field as C spells it and states its real bounds. */
static void test_range_messages(void) {
    struct {
        const char *message;
        LoadmonServerConfig cfg;
    } bad[12];
    int n = 0;
    for (int i = 0; i < 12; i++) bad[i].cfg = fleet_server_config(LOADMON_NO_FLEET);
    bad[n].message = "max_clients must be from 1 to 1000000, not -1";
    bad[n++].cfg.max_clients = -1;
    bad[n].message = "max_clients must be from 1 to 1000000, not 0";
    bad[n++].cfg.max_clients = 0;
    bad[n].message = "max_clients must be from 1 to 1000000, not 1000001";
    bad[n++].cfg.max_clients = 1000001;
    bad[n].message = "heartbeat_timeout_ms must be from 1 to 1000000000000 ms, not -3";
    bad[n++].cfg.heartbeat_timeout_ms = -3;
    bad[n].message = "heartbeat_timeout_ms must be from 1 to 1000000000000 ms, not 0";
    bad[n++].cfg.heartbeat_timeout_ms = 0;
    bad[n].message = "handshake_timeout_ms must be from 1 to 1000000000000 ms, not 0";
    bad[n++].cfg.handshake_timeout_ms = 0;
    bad[n].message = "expect_clients must be from 1 to 1000000, not -5";
    bad[n++].cfg.expect_clients = -5;
    bad[n].message = "expect_clients must be from 1 to 1000000, not 0";
    bad[n++].cfg.expect_clients = 0;
    bad[n].message = "plan_keep_files must be";
    bad[n].cfg.expect_clients = 2;
    bad[n++].cfg.plan_keep_files = 0;
    bad[n].message = "start_timeout_ms must be from 1 to 1000000000000 ms, not 0";
    bad[n].cfg.expect_clients = 2;
    bad[n++].cfg.start_timeout_ms = 0;
    bad[n].message = "plan_chunk_size_mb must be a size from 512 bytes to 4096 MB, not -1 MB";
    bad[n].cfg.expect_clients = 2;
    bad[n++].cfg.plan_chunk_size_mb = -1;
    for (int i = 0; i < n; i++) {
        LoadmonServer *s = NULL;
        CHECK(loadmon_server_start(&bad[i].cfg, &s) == LOADMON_CONFIG && s == NULL);
        if (!last_error_contains(bad[i].message)) {
            failed++;
            fprintf(stderr, "range message %d: expected \"%s\" in: %s\n", i, bad[i].message,
                    loadmon_last_error());
        }
        if (s) loadmon_server_free(s);
    }
    /* keep_files 0 names the field and the C way to keep all. */
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&bad[8].cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("LOADMON_KEEP_ALL") && !last_error_contains(" keep_files"));

    uint16_t nobody = dead_port();
    struct {
        const char *message;
        LoadmonTestClientConfig cfg;
    } tc[8];
    n = 0;
    for (int i = 0; i < 8; i++) tc[i].cfg = small_client(nobody);
    tc[n].message = "port must be from 1 to 65535, not 0";
    tc[n++].cfg.port = 0;
    tc[n].message = "port must be from 1 to 65535, not -1";
    tc[n++].cfg.port = -1;
    tc[n].message = "chunk_size_mb must be a size from 512 bytes to 4096 MB, not -10 MB";
    tc[n++].cfg.chunk_size_mb = -10;
    tc[n].message = "heartbeat_period_ms must be from 1 to 1000000000000 ms, not 0";
    tc[n++].cfg.heartbeat_period_ms = 0;
    tc[n].message = "stats_period_ms must be from 1 to 1000000000000 ms, not -1";
    tc[n++].cfg.stats_period_ms = -1;
    tc[n].message = "connect_timeout_ms must be from 0 to 1000000000000 ms, not -1";
    tc[n++].cfg.connect_timeout_ms = -1;
    tc[n].message = "keep_files must be";
    tc[n++].cfg.keep_files = -2;
    for (int i = 0; i < n; i++) {
        CHECK(loadmon_test_client_run(&tc[i].cfg, NULL) == LOADMON_CONFIG);
        if (!last_error_contains(tc[i].message)) {
            failed++;
            fprintf(stderr, "client range message %d: expected \"%s\" in: %s\n", i,
                    tc[i].message, loadmon_last_error());
        }
    }
    LoadmonClientConfig g;
    CHECK(loadmon_client_config_default(&g, sizeof g) == LOADMON_OK);
    g.port = nobody;
    g.chunk_size_mb = 0;
    g.file_size_mb = 50;
    CHECK(loadmon_client_run(&g, never_called, NULL, NULL) == LOADMON_CONFIG);
    CHECK(last_error_contains("chunk_size_mb must be from 1 to 1073741824, not 0"));
    g.chunk_size_mb = 10;
    g.file_size_mb = -4;
    CHECK(loadmon_client_run(&g, never_called, NULL, NULL) == LOADMON_CONFIG);
    CHECK(last_error_contains("file_size_mb must be from 1 to 1073741824, not -4"));
    LoadmonWorkerConfig wc = small_worker(nobody, out_dir);
    wc.retry_max_ms = 0;
    LoadmonWorker *w = NULL;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_CONFIG && w == NULL);
    CHECK(last_error_contains("retry_max_ms must be from 1 to 1000000000000 ms, not 0"));
}

/* Clients in the background: start, join with a timeout, cancel, free; a session log file for
 * each in log_dir. */
struct spin {
    int started;  /* atomic */
    int returned; /* atomic */
};

static int spin_until_up(LoadmonClientContext *ctx, void *user) {
    struct spin *sp = user;
    __atomic_store_n(&sp->started, 1, __ATOMIC_SEQ_CST);
    while (!loadmon_client_context_time_is_up(ctx)) usleep(5000);
    __atomic_store_n(&sp->returned, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int wait_started(struct spin *sp) {
    for (int i = 0; i < 1000; i++) {
        if (__atomic_load_n(&sp->started, __ATOMIC_SEQ_CST)) return 1;
        usleep(10000);
    }
    return 0;
}

static int count_files(const char *dir, const char *prefix) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | grep -c '^%s'", dir, prefix);
    FILE *p = popen(cmd, "r");
    if (p == NULL) return -1;
    int n = -1;
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
    return n;
}

static void test_client_handles(void) {
    LoadmonServer *s = start_server();
    if (s == NULL) return;
    char logs[300];
    snprintf(logs, sizeof logs, "%s-client-logs", out_dir);
    LoadmonTestClientConfig c = small_client(loadmon_server_port(s));
    CHECK(c.log_dir == NULL);
    c.log_dir = logs;
    LoadmonClient *tc = NULL;
    CHECK(loadmon_test_client_start(&c, &tc) == LOADMON_OK && tc != NULL);
    char *result = NULL;
    CHECK(loadmon_client_join(tc, 0, &result) == LOADMON_TIMEOUT && result == NULL);
    CHECK(last_error_contains("still running"));
    CHECK(loadmon_client_join(tc, 20000, &result) == LOADMON_OK && result != NULL);
    CHECK(result != NULL && strstr(result, "\"files_written\"") != NULL);
    loadmon_string_free(result);
    result = NULL;
    CHECK(loadmon_client_join(tc, 0, NULL) == LOADMON_OK); /* again: the same outcome */
    CHECK(loadmon_client_cancel(tc) == LOADMON_OK);        /* finished: nothing to do */
    loadmon_client_free(tc);
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && count(report, "\"status\": \"PASS\"") == 1);
    loadmon_string_free(report);
    loadmon_server_free(s);

    /* A generic client with no run time: its callback runs until the client is cancelled. */
    s = start_server();
    if (s == NULL) return;
    LoadmonClientConfig g;
    CHECK(loadmon_client_config_default(&g, sizeof g) == LOADMON_OK);
    CHECK(g.log_dir == NULL);
    g.port = loadmon_server_port(s);
    g.heartbeat_period_ms = 50;
    g.stats_period_ms = 100;
    g.log_dir = logs;
    struct spin sp = {0, 0};
    LoadmonClient *gc = NULL;
    CHECK(loadmon_client_start(&g, spin_until_up, &sp, &gc) == LOADMON_OK && gc != NULL);
    CHECK(wait_started(&sp));
    CHECK(loadmon_client_join(gc, 100, &result) == LOADMON_TIMEOUT && result == NULL);
    double t0 = now_s();
    CHECK(loadmon_client_cancel(gc) == LOADMON_OK);
    CHECK(loadmon_client_join(gc, 10000, &result) == LOADMON_WORKLOAD && result == NULL);
    CHECK(last_error_contains("cancelled"));
    CHECK(now_s() - t0 < 5.0);
    CHECK(__atomic_load_n(&sp.returned, __ATOMIC_SEQ_CST) == 1);
    loadmon_client_free(gc);
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && strstr(report, "client run cancelled") != NULL);
    loadmon_string_free(report);
    loadmon_server_free(s);

    /* Freed while running: cancelled, and its callback has returned when free returns. */
    s = start_server();
    if (s == NULL) return;
    g.port = loadmon_server_port(s);
    struct spin sp2 = {0, 0};
    gc = NULL;
    CHECK(loadmon_client_start(&g, spin_until_up, &sp2, &gc) == LOADMON_OK && gc != NULL);
    CHECK(wait_started(&sp2));
    loadmon_client_free(gc);
    CHECK(__atomic_load_n(&sp2.returned, __ATOMIC_SEQ_CST) == 1);

    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && strstr(report, "client run cancelled") != NULL);
    loadmon_string_free(report);
    loadmon_server_free(s);
    CHECK(count_files(logs, "client_log_") == 3);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", logs);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", logs);

    /* Bad settings and NULLs: nothing is started. */
    tc = NULL;
    c.port = 0;
    CHECK(loadmon_test_client_start(&c, &tc) == LOADMON_CONFIG && tc == NULL);
    c.port = 1;
    CHECK(loadmon_test_client_start(NULL, &tc) == LOADMON_INVALID_ARGUMENT && tc == NULL);
    CHECK(loadmon_test_client_start(&c, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_client_start(&g, NULL, NULL, &gc) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("run_tests is NULL"));
    CHECK(loadmon_client_start(&g, spin_until_up, NULL, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_client_join(NULL, 0, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_client_join: client is NULL"));
    CHECK(loadmon_client_cancel(NULL) == LOADMON_INVALID_ARGUMENT);
    loadmon_client_free(NULL);
}

static void test_fleet_bad_values(void) {
    LoadmonServer *s = NULL;
    struct {
        const char *field;
        LoadmonServerConfig cfg;
    } bad[12];
    int n = 0;
    for (int i = 0; i < 12; i++) bad[i].cfg = fleet_server_config(2);
    bad[n].field = "expect_clients";
    bad[n++].cfg.expect_clients = 0;
    bad[n].field = "expect_clients";
    bad[n++].cfg.expect_clients = -5;
    bad[n].field = "max_clients";
    bad[n].cfg.max_clients = 5; /* set: the default (the core's rule) would take the fleet */
    bad[n++].cfg.expect_clients = 10; /* above max_clients (5) */
    bad[n].field = "plan_chunk_size_mb";
    bad[n++].cfg.plan_chunk_size_mb = -1;
    bad[n].field = "plan: ";
    bad[n++].cfg.plan_chunk_size_mb = 60; /* above the file size */
    bad[n].field = "plan_run_time_ms";
    bad[n++].cfg.plan_run_time_ms = 0;
    bad[n].field = "keep_files";
    bad[n++].cfg.plan_keep_files = 0;
    bad[n].field = "sync";
    bad[n++].cfg.plan_sync = "sometimes";
    bad[n].field = "start_timeout";
    bad[n++].cfg.start_timeout_ms = 0;
    bad[n].field = "start_timeout_ms";
    bad[n].cfg.expect_clients = LOADMON_NO_FLEET;
    bad[n++].cfg.start_timeout_ms = 1000; /* a start timeout without a fleet */
    bad[n].field = "plan_run_time_ms";
    bad[n++].cfg.plan_run_time_ms = INT64_MAX;
    for (int i = 0; i < n; i++) {
        s = NULL;
        int rc = loadmon_server_start(&bad[i].cfg, &s);
        CHECK(rc == LOADMON_CONFIG && s == NULL);
        if (!last_error_contains(bad[i].field)) {
            failed++;
            fprintf(stderr, "bad fleet value %d: expected %s in: %s\n", i, bad[i].field,
                    loadmon_last_error());
        }
        if (s) loadmon_server_free(s);
    }
    /* Without a fleet the plan fields are not used. */
    LoadmonServerConfig cfg = fleet_server_config(LOADMON_NO_FLEET);
    cfg.plan_chunk_size_mb = -1;
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }

    uint16_t nobody = dead_port();
    LoadmonWorkerConfig wc = small_worker(nobody, out_dir);
    LoadmonWorker *w = NULL;
    wc.stay = 2;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_CONFIG && w == NULL);
    CHECK(last_error_contains("stay"));
    wc = small_worker(nobody, out_dir);
    wc.retry_max_ms = 0;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_CONFIG && w == NULL);
    CHECK(last_error_contains("retry_max"));
    wc = small_worker(nobody, out_dir);
    wc.max_chunk_mb = 4097;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_CONFIG && w == NULL);
    CHECK(last_error_contains("max_chunk_mb must be from 1 to 4096"));
    wc = small_worker(nobody, out_dir);
    wc.max_disk_mb = -1;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_CONFIG && w == NULL);
    CHECK(last_error_contains("max_disk_mb"));
    wc = small_worker(nobody, out_dir);
    wc.port = 70000;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_CONFIG && w == NULL);
    CHECK(last_error_contains("port"));
    wc = small_worker(nobody, out_dir);
    wc.heartbeat_period_ms = 0;
    CHECK(loadmon_worker_run(&wc, NULL) == LOADMON_CONFIG);
    wc = small_worker(nobody, out_dir);
    wc.out_dir = NULL;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_INVALID_ARGUMENT && w == NULL);
    wc = small_worker(nobody, out_dir);
    wc.host = NULL;
    CHECK(loadmon_worker_start(&wc, &w) == LOADMON_INVALID_ARGUMENT && w == NULL);
    /* No server: an I/O error after one attempt. */
    wc = small_worker(nobody, out_dir);
    wc.connect_timeout_ms = 0;
    CHECK(loadmon_worker_run(&wc, NULL) == LOADMON_IO);

    /* NULLs. */
    CHECK(loadmon_worker_config_default(NULL, sizeof wc) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_worker_config_default: cfg is NULL"));
    CHECK(loadmon_worker_start(NULL, &w) == LOADMON_INVALID_ARGUMENT && w == NULL);
    wc = small_worker(nobody, out_dir);
    CHECK(loadmon_worker_start(&wc, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_worker_join(NULL, 0, NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_worker_join: worker is NULL"));
    CHECK(loadmon_worker_cancel(NULL) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_worker_run(NULL, NULL) == LOADMON_INVALID_ARGUMENT);
    loadmon_worker_free(NULL);
}

/* The settings the C face gained (issue 20): each is read, converted with the core's rule
 * (a bad value is LOADMON_CONFIG naming the C field) and reaches the server or the client;
 * LOADMON_AUTO_MAX_CLIENTS takes the core's rule (the default, raised to expect_clients). */
static void test_every_setting(void) {
    struct {
        const char *message;
        LoadmonServerConfig cfg;
    } bad[10];
    int n = 0;
    for (int i = 0; i < 10; i++) bad[i].cfg = fleet_server_config(LOADMON_NO_FLEET);
    bad[n].message = "max_pending must be from 1 to 1000000, not 0";
    bad[n++].cfg.max_pending = 0;
    bad[n].message = "max_ids must be from 1 to 100000000, not 0";
    bad[n++].cfg.max_ids = 0;
    bad[n].message = "write_timeout_ms must be from 1 to";
    bad[n++].cfg.write_timeout_ms = 0;
    bad[n].message = "max_line_bytes must be at least 64";
    bad[n++].cfg.max_line_bytes = 10;
    bad[n].message = "http_linger_ms must be from 0 to";
    bad[n++].cfg.http_linger_ms = -5;
    bad[n].message = "http_header_read_timeout_ms must be from 1 to";
    bad[n++].cfg.http_header_read_timeout_ms = 0;
    bad[n].message = "http_idle_timeout_ms must be from 1 to";
    bad[n++].cfg.http_idle_timeout_ms = 0;
    bad[n].message = "http_max_connections must be from 1 to 1000000, not 0";
    bad[n++].cfg.http_max_connections = 0;
    bad[n].message = "http_write_timeout_ms must be from 1 to";
    bad[n++].cfg.http_write_timeout_ms = 0;
    bad[n].message = "max_clients must be from 1 to 1000000, not -3";
    bad[n++].cfg.max_clients = -3;
    for (int i = 0; i < n; i++) {
        LoadmonServer *s = NULL;
        CHECK(loadmon_server_start(&bad[i].cfg, &s) == LOADMON_CONFIG && s == NULL);
        if (!last_error_contains(bad[i].message)) {
            failed++;
            fprintf(stderr, "new setting %d: expected \"%s\" in: %s\n", i, bad[i].message,
                    loadmon_last_error());
        }
        if (s) loadmon_server_free(s);
    }

    /* LOADMON_AUTO_MAX_CLIENTS (the default): a fleet of 10 starts (max_clients 5 would refuse
     * it), and without a fleet it is the core's default. */
    LoadmonServerConfig cfg = fleet_server_config(10);
    cfg.max_clients = LOADMON_AUTO_MAX_CLIENTS;
    LoadmonServer *s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }
    cfg.max_clients = 5;
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("max_clients"));
    /* The rule is the default: a default config with a fleet of 10 starts too. */
    cfg = fleet_server_config(10);
    CHECK(cfg.max_clients == LOADMON_AUTO_MAX_CLIENTS);
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }
    cfg = fleet_server_config(LOADMON_NO_FLEET);
    cfg.max_clients = LOADMON_AUTO_MAX_CLIENTS;
    cfg.max_pending = 1;
    cfg.max_ids = 1;
    cfg.write_timeout_ms = 500;
    cfg.max_line_bytes = 1 << 20;
    cfg.http = "127.0.0.1:0";
    cfg.http_linger_ms = 100;
    cfg.http_max_connections = 2;
    s = NULL;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        CHECK(loadmon_server_http_port(s) != 0);
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }

    /* The client side: the handshake timeout and the line bound. */
    LoadmonClientConfig g;
    CHECK(loadmon_client_config_default(&g, sizeof g) == LOADMON_OK);
    CHECK(g.handshake_timeout_ms == 10000 && g.max_line_bytes == 4096);
    g.handshake_timeout_ms = 0;
    LoadmonClient *c = NULL;
    CHECK(loadmon_client_start(&g, spin_until_up, NULL, &c) == LOADMON_CONFIG && c == NULL);
    CHECK(last_error_contains("handshake_timeout_ms"));
    g.handshake_timeout_ms = 10000;
    g.max_line_bytes = 10;
    CHECK(loadmon_client_start(&g, spin_until_up, NULL, &c) == LOADMON_CONFIG && c == NULL);
    CHECK(last_error_contains("max_line_bytes"));
    LoadmonWorkerConfig w;
    CHECK(loadmon_worker_config_default(&w, sizeof w) == LOADMON_OK);
    CHECK(w.handshake_timeout_ms == 10000 && w.max_line_bytes == 4096);
    w.max_line_bytes = -1;
    CHECK(loadmon_worker_run(&w, NULL) == LOADMON_CONFIG);
    CHECK(last_error_contains("max_line_bytes"));
}

/* Thresholds: a passing and a failing rule in the report's verdict and the JUnit XML; a bad
 * rule is LOADMON_CONFIG whose message names the rule and points into it; abort_on_fail needs a
 * rule and is a flag. */
static void test_thresholds(void) {
    char junit[300];
    snprintf(junit, sizeof junit, "%s-junit.xml", out_dir);
    LoadmonServerConfig cfg;
    CHECK(loadmon_server_config_default(&cfg, sizeof cfg) == LOADMON_OK);
    CHECK(cfg.thresholds == NULL && cfg.abort_on_fail == 0 && cfg.baseline_path == NULL &&
          cfg.report_junit_path == NULL);
    cfg.port = 0;
    LoadmonServer *s = NULL;

    const char *bad_rule[] = {"fleet.bytes > 0", "fleet.p99 < 50", NULL};
    cfg.thresholds = bad_rule;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("threshold rule: unknown metric `p99`"));
    CHECK(last_error_contains("\n  fleet.p99 < 50\n        ^"));
    CHECK(last_error_contains("p99_ms (ms; fleet|client; over Ns: fleet)"));
    const char *baseline_rule[] = {"fleet.mb_s >= baseline * 0.9", NULL};
    cfg.thresholds = baseline_rule;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("refers to the baseline"));
    cfg.thresholds = NULL;
    cfg.abort_on_fail = 1;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("abort_on_fail needs a threshold rule"));
    cfg.abort_on_fail = 2;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("abort_on_fail"));
    cfg.abort_on_fail = 0;

    const char *rules[] = {"fleet.bytes > 0", "client.mb_s >= 1000000", NULL};
    cfg.thresholds = rules;
    cfg.report_junit_path = junit;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s == NULL) return;
    struct client_run run;
    pthread_t t;
    start_client_thread(s, 500, &run, &t);
    pthread_join(t, NULL);
    CHECK(run.rc == LOADMON_OK);
    loadmon_string_free(run.result);
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    if (report != NULL) {
        CHECK(strstr(report, "\"verdict\"") != NULL);
        CHECK(strstr(report, "\"passed\": false") != NULL);
        CHECK(count(report, "\"outcome\": \"PASS\"") == 1);
        CHECK(count(report, "\"outcome\": \"FAIL\"") >= 1);
        char *text = NULL;
        CHECK(loadmon_report_text(report, &text) == LOADMON_OK && text != NULL);
        CHECK(text != NULL && strstr(text, "client.mb_s >= 1000000") != NULL);
        loadmon_string_free(text);
    }
    loadmon_string_free(report);
    loadmon_server_free(s);
    FILE *f = fopen(junit, "r");
    CHECK(f != NULL);
    if (f != NULL) {
        static char xml[65536];
        size_t n = fread(xml, 1, sizeof xml - 1, f);
        xml[n] = '\0';
        fclose(f);
        CHECK(strstr(xml, "<testsuites") != NULL);
        CHECK(count(xml, "<failure") >= 1);
        CHECK(strstr(xml, "client.mb_s &gt;= 1000000") != NULL);
    }
    remove(junit);
}

/* The plan line a fleet server on `port` sends a worker that says hello (into `line`). */
static int read_plan_line(uint16_t port, char *line, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    const char *hello = "hello:1.0:plan,ping\n";
    if (send(fd, hello, strlen(hello), 0) != (ssize_t)strlen(hello)) {
        close(fd);
        return 0;
    }
    /* Two lines: the server's hello, then the plan. */
    char buf[2048];
    size_t got = 0;
    int newlines = 0;
    while (newlines < 2 && got + 1 < sizeof buf) {
        ssize_t n = recv(fd, buf + got, 1, 0);
        if (n <= 0) break;
        if (buf[got] == '\n') newlines++;
        got++;
    }
    close(fd);
    buf[got] = '\0';
    const char *plan = strstr(buf, "\nplan:");
    if (newlines < 2 || plan == NULL) return 0;
    snprintf(line, cap, "%s", plan + 1);
    line[strcspn(line, "\n")] = '\0';
    return 1;
}

/* Verified writes: the test client's and the fleet plan's verify fields reach the core (its
 * defaults, its rules, a bad value LOADMON_CONFIG naming it), the plan line carries them, and
 * loadmon_verify checks files as `loadmon verify --json` does. */
static void test_verify(void) {
    LoadmonTestClientConfig c = small_client(1);
    CHECK(c.verify == NULL && c.verify_block_bytes == 4096 && c.verify_continue == 0 &&
          c.verify_peer == 0 && c.overwrite == 0);
    struct {
        const char *message;
        LoadmonTestClientConfig cfg;
    } bad[8];
    int n = 0;
    for (int i = 0; i < 8; i++) bad[i].cfg = small_client(1);
    bad[n].message = "verify must be none, rollover or end, not \"later\"";
    bad[n++].cfg.verify = "later";
    bad[n].message = "verify_block_bytes: verify block of 3000 bytes: it must be a power of two";
    bad[n++].cfg.verify_block_bytes = 3000;
    bad[n].message = "verify_block_bytes: verify block of -1 bytes";
    bad[n++].cfg.verify_block_bytes = -1;
    bad[n].message = "verify_continue must be 0 or 1, not 2";
    bad[n++].cfg.verify_continue = 2;
    bad[n].message = "verify_continue needs a check of the data";
    bad[n++].cfg.verify_continue = 1;
    bad[n].message = "verify_peer checks another client's files when the run ends";
    bad[n].cfg.verify = "rollover";
    bad[n++].cfg.verify_peer = 1;
    bad[n].message = "keep_files must be a number, not all";
    bad[n].cfg.keep_files = LOADMON_KEEP_ALL;
    bad[n++].cfg.overwrite = 1;
    /* (Sizes in C are whole MB, so always whole blocks: the block is at most 1 MB.) */
    bad[n].message = "verify_block_bytes: verify block of 2097152 bytes";
    bad[n++].cfg.verify_block_bytes = 2097152;
    for (int i = 0; i < n; i++) {
        LoadmonClient *cl = NULL;
        CHECK(loadmon_test_client_start(&bad[i].cfg, &cl) == LOADMON_CONFIG && cl == NULL);
        if (!last_error_contains(bad[i].message)) {
            failed++;
            fprintf(stderr, "bad verify value %d: expected %s in: %s\n", i, bad[i].message,
                    loadmon_last_error());
        }
        if (cl) loadmon_client_free(cl);
    }

    /* The fleet's plan: bad values name the plan field; good ones travel on the plan line. */
    LoadmonServerConfig d;
    CHECK(loadmon_server_config_default(&d, sizeof d) == LOADMON_OK);
    CHECK(d.plan_verify == NULL && d.plan_verify_block_bytes == 4096 &&
          d.plan_verify_continue == 0 && d.plan_verify_peer == 0 && d.plan_overwrite == 0);
    LoadmonServer *s = NULL;
    LoadmonServerConfig cfg = fleet_server_config(1);
    cfg.plan_verify_block_bytes = 1000;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("plan_verify_block_bytes: verify block of 1000 bytes"));
    cfg = fleet_server_config(1);
    cfg.plan_overwrite = 3;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("plan_overwrite must be 0 or 1, not 3"));
    cfg = fleet_server_config(1);
    cfg.plan_verify_peer = 1;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_CONFIG && s == NULL);
    CHECK(last_error_contains("verify_peer needs a check of the data"));
    cfg = fleet_server_config(1);
    cfg.plan_verify = "rollover";
    cfg.plan_verify_block_bytes = 65536;
    cfg.plan_verify_continue = 1;
    cfg.plan_overwrite = 1;
    CHECK(loadmon_server_start(&cfg, &s) == LOADMON_OK && s != NULL);
    if (s) {
        char line[1024] = "";
        CHECK(read_plan_line(loadmon_server_port(s), line, sizeof line));
        const char *tail =
            ":keep_files=2:verify=rollover:verify_block=64k:verify_continue=1:overwrite=1";
        size_t ll = strlen(line), tl = strlen(tail);
        CHECK(strncmp(line, "plan:run=", 9) == 0 && ll > tl && strcmp(line + ll - tl, tail) == 0);
        if (ll <= tl || strcmp(line + ll - tl, tail) != 0) fprintf(stderr, "plan: %s\n", line);
        CHECK(loadmon_server_stop(s, NULL) == LOADMON_OK);
        loadmon_server_free(s);
    }

    /* loadmon_verify: a file of zeros is 16 torn blocks at offset 0, the finding in the JSON. */
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s-verify", out_dir);
    snprintf(path, sizeof path, "%s/client_100_0_1_2026-12-05_10.11.12", dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL) return;
    static const char zeros[65536];
    CHECK(fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros);
    fclose(f);
    LoadmonVerifyOptions o;
    CHECK(loadmon_verify_options_default(&o, sizeof o) == LOADMON_OK);
    CHECK(o.struct_size == sizeof o && o.direct == 0 && o.max_findings == 100);
    CHECK(o.block_bytes == LOADMON_VERIFY_FROM_FILE && o.run_id == LOADMON_VERIFY_FROM_FILE &&
          o.generation == LOADMON_VERIFY_FROM_FILE);
    o.block_bytes = 4096;
    const char *paths[] = {path, dir};
    char *report = NULL;
    CHECK(loadmon_verify(paths, 1, &o, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && strstr(report, "\"torn\": 16") != NULL);
    CHECK(report != NULL && strstr(report, "\"blocks_checked\": 16") != NULL);
    CHECK(report != NULL && strstr(report, "\"class\": \"torn\"") != NULL);
    CHECK(report != NULL && strstr(report, "\"offset_bytes\": 0") != NULL);
    CHECK(report != NULL && strstr(report, "\"client_id\": 100") != NULL);
    loadmon_string_free(report);
    /* A file and a directory (its data files); NULL options are the core's defaults; no
     * report wanted. */
    report = NULL;
    CHECK(loadmon_verify(paths, 2, NULL, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && strstr(report, "\"torn\": 32") != NULL);
    loadmon_string_free(report);
    CHECK(loadmon_verify(paths, 1, NULL, NULL) == LOADMON_OK);
    /* Errors: no path, a path that does not exist, options out of range, NULLs, sizes. */
    report = NULL;
    CHECK(loadmon_verify(paths, 0, NULL, &report) == LOADMON_CONFIG && report == NULL);
    CHECK(last_error_contains("no file given"));
    const char *gone[] = {"/nonexistent/loadmon-verify"};
    CHECK(loadmon_verify(gone, 1, NULL, &report) == LOADMON_CONFIG && report == NULL);
    CHECK(last_error_contains("does not exist"));
    o.max_findings = 0;
    CHECK(loadmon_verify(paths, 1, &o, &report) == LOADMON_CONFIG);
    CHECK(last_error_contains("max_findings must be from 1 to 100000, not 0"));
    CHECK(loadmon_verify_options_default(&o, sizeof o) == LOADMON_OK);
    o.block_bytes = 3000;
    CHECK(loadmon_verify(paths, 1, &o, &report) == LOADMON_CONFIG);
    CHECK(last_error_contains("block_bytes: verify block of 3000 bytes"));
    o.block_bytes = LOADMON_VERIFY_FROM_FILE;
    o.direct = 2;
    CHECK(loadmon_verify(paths, 1, &o, &report) == LOADMON_CONFIG);
    CHECK(last_error_contains("direct must be 0 or 1, not 2"));
    CHECK(loadmon_verify(NULL, 1, NULL, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("loadmon_verify: paths is NULL"));
    const char *null_entry[] = {path, NULL};
    CHECK(loadmon_verify(null_entry, 2, NULL, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(last_error_contains("paths[1] is NULL"));
    /* The bound of max_findings, whichever side: the core's (1 to 100000), not an int's. */
    CHECK(loadmon_verify_options_default(&o, sizeof o) == LOADMON_OK);
    o.max_findings = -1;
    CHECK(loadmon_verify(paths, 1, &o, &report) == LOADMON_CONFIG);
    CHECK(last_error_contains("max_findings must be from 1 to 100000, not -1"));
    /* A path that is not UTF-8 is a Linux path like any other. */
    char odd[420];
    snprintf(odd, sizeof odd, "%s/zeros-\xff\xfe", dir);
    char shell[1000];
    snprintf(shell, sizeof shell, "cp %s '%s'", path, odd);
    CHECK(system(shell) == 0);
    const char *odd_paths[] = {odd};
    report = NULL;
    CHECK(loadmon_verify(odd_paths, 1, NULL, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && strstr(report, "\"torn\": 16") != NULL);
    loadmon_string_free(report);
    report = NULL;
    /* A FIFO nobody writes to is refused at once (opening it used to wait for a writer). */
    char fifo[420];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(shell, sizeof shell, "mkfifo %s", fifo);
    CHECK(system(shell) == 0);
    const char *fifo_paths[] = {fifo};
    CHECK(loadmon_verify(fifo_paths, 1, NULL, &report) == LOADMON_CONFIG && report == NULL);
    CHECK(last_error_contains("is not a regular file"));
    CHECK(loadmon_verify_options_default(&o, sizeof o) == LOADMON_OK);
    o.struct_size = sizeof o + 8;
    CHECK(loadmon_verify(paths, 1, &o, &report) == LOADMON_INVALID_ARGUMENT);
    CHECK(loadmon_verify_options_default(NULL, sizeof o) == LOADMON_INVALID_ARGUMENT);
    CHECK(report == NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* The whole path from C: a client writing with verify "end" checks every block it kept (no
 * error, in its result and in the server's report), and loadmon_verify finds the kept files as
 * written. */
static void test_verified_run(void) {
    char dir[300], cmd[400];
    snprintf(dir, sizeof dir, "%s-verified", out_dir);
    LoadmonServer *s = start_server();
    LoadmonTestClientConfig c = small_client(loadmon_server_port(s));
    c.out_dir = dir;
    c.verify = "end";
    c.keep_files = 2;
    char *result = NULL;
    CHECK(loadmon_test_client_run(&c, &result) == LOADMON_OK && result != NULL);
    /* 2 MB files of 4 KiB blocks: 512 blocks each, 1 or 2 files kept. */
    CHECK(result != NULL && strstr(result, "\"errors_total\": 0") != NULL);
    CHECK(result != NULL && (strstr(result, "\"blocks_checked\": 512,") != NULL ||
                             strstr(result, "\"blocks_checked\": 1024,") != NULL));
    if (result != NULL && strstr(result, "\"errors_total\": 0") == NULL)
        fprintf(stderr, "verified run: %s\n", result);
    loadmon_string_free(result);
    char *report = NULL;
    CHECK(loadmon_server_wait(s, 20000, &report) == LOADMON_OK && report != NULL);
    CHECK(report != NULL && count(report, "\"status\": \"PASS\"") == 1);
    CHECK(report != NULL && strstr(report, "\"errors_total\": 0") != NULL);
    loadmon_string_free(report);
    loadmon_server_free(s);
    const char *paths[] = {dir};
    char *checked = NULL;
    CHECK(loadmon_verify(paths, 1, NULL, &checked) == LOADMON_OK && checked != NULL);
    CHECK(checked != NULL && strstr(checked, "\"blocks_ok\": 0,") == NULL);
    CHECK(checked != NULL && count(checked, "\"errors\": {\n    \"corrupt\": 0,\n    \"stale\": 0,\n    \"misdirected\": 0,\n    \"torn\": 0,\n    \"short\": 0\n  }") == 1);
    if (checked != NULL && strstr(checked, "\"torn\": 0") == NULL) fprintf(stderr, "%s\n", checked);
    loadmon_string_free(checked);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    snprintf(out_dir, sizeof out_dir, "/tmp/loadmon-c-test-%d", (int)getpid());
    test_full_run();
    test_verified_run();
    test_error_paths();
    test_last_error_is_per_thread();
    test_custom_workload();
    test_snapshot_and_stop_mid_run();
    test_http_and_reports();
    test_http_allow_hosts();
    test_report_survives_its_files();
    test_status_names_and_version();
    test_guards();
    test_config_growth();
    test_rules_like_python();
    test_file_stats_pairs();
    test_timeouts();
    test_log_callback();
    test_fleet();
    test_fleet_bad_values();
    test_range_messages();
    test_client_handles();
    test_slow_log_callback();
    test_every_setting();
    test_thresholds();
    test_verify();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", out_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", out_dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
