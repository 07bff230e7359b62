// Callbacks written in C++: loadmon cannot catch a C++ exception (one that reaches it aborts
// the process), so each callback catches everything inside. The safe pattern, run for real:
// a log callback whose work throws, and a workload whose work throws and that turns the
// exception into a failed run (LOADMON_WORKLOAD, the reason on the server) instead.
// Built and run by `make c-test`. Ends with "N passed, N failed".
#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "loadmon.h"

static int passed, failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            const char *e_ = loadmon_last_error();                                         \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__,      \
                         __LINE__, #cond, e_ ? e_ : "(none)");                              \
        }                                                                                  \
    } while (0)

struct LogState {
    std::atomic<int> records{0};
    std::atomic<int> caught{0};
};

// Work that throws (a full disk, a bad_alloc, a bug): here, on every record.
static void store(const std::string &line) {
    if (!line.empty()) throw std::runtime_error("cannot store: " + line);
}

// The pattern: nothing escapes the callback.
static void on_log(LoadmonLogLevel, const char *target, const char *message, void *user) {
    auto *st = static_cast<LogState *>(user);
    try {
        st->records++;
        store(std::string(target) + ": " + message);
    } catch (...) {
        st->caught++;
    }
}

// The pattern for a workload: an exception becomes a failed run with its message.
static int run_tests(LoadmonClientContext *ctx, void *) {
    try {
        loadmon_client_context_record_write(ctx, 1 << 20, 1000);
        throw std::runtime_error("the C++ workload threw");
    } catch (const std::exception &e) {
        loadmon_client_context_set_error(ctx, e.what());
        return 1;
    } catch (...) {
        return 2;
    }
}

int main() {
    static LogState st;
    CHECK(loadmon_set_log_callback(on_log, &st) == LOADMON_OK);

    LoadmonServerConfig sc;
    CHECK(loadmon_server_config_default(&sc, sizeof sc) == LOADMON_OK);
    sc.port = 0;
    LoadmonServer *server = nullptr;
    CHECK(loadmon_server_start(&sc, &server) == LOADMON_OK && server != nullptr);
    if (server == nullptr) return 1;

    LoadmonClientConfig cc;
    CHECK(loadmon_client_config_default(&cc, sizeof cc) == LOADMON_OK);
    cc.port = loadmon_server_port(server);
    cc.run_time_ms = 200;
    char *result = nullptr;
    CHECK(loadmon_client_run(&cc, run_tests, nullptr, &result) == LOADMON_WORKLOAD);
    CHECK(result == nullptr && std::strstr(loadmon_last_error(), "the C++ workload threw"));

    char *report = nullptr;
    CHECK(loadmon_server_wait(server, 20000, &report) == LOADMON_OK && report != nullptr);
    CHECK(report != nullptr && std::strstr(report, "\"status\": \"FAILED\"") != nullptr);
    CHECK(report != nullptr && std::strstr(report, "the C++ workload threw") != nullptr);
    loadmon_string_free(report);
    loadmon_server_free(server);

    // Every record so far reaches the callback, and every exception stayed inside it.
    CHECK(loadmon_log_flush(10000) == LOADMON_OK);
    CHECK(loadmon_set_log_callback(nullptr, nullptr) == LOADMON_OK);
    CHECK(st.records > 2 && st.caught == st.records);

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
