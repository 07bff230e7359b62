// The generated header compiles as C++ (extern "C", no C-only constructs), and its version
// macros, constants and status names are usable from C++.
#include <cstring>

#include "loadmon.h"

static void on_log(LoadmonLogLevel, const char *, const char *, void *) {}

int main() {
    LoadmonServerConfig cfg;
    if (loadmon_server_config_default(&cfg, sizeof cfg) != LOADMON_OK) return 1;
    LoadmonTestClientConfig tc;
    if (loadmon_test_client_config_default(&tc, sizeof tc) != LOADMON_OK) return 1;
    if (tc.keep_files == LOADMON_KEEP_ALL) return 1;
    if (cfg.expect_clients != LOADMON_NO_FLEET || cfg.start_timeout_ms != LOADMON_NO_START_TIMEOUT)
        return 1;
    LoadmonWorkerConfig wc;
    if (loadmon_worker_config_default(&wc, sizeof wc) != LOADMON_OK || wc.stay != 0) return 1;
    LoadmonWorker *worker = nullptr;
    loadmon_worker_free(worker);
    if (loadmon_set_log_callback(on_log, nullptr) != LOADMON_OK) return 1;
    if (loadmon_set_log_callback(nullptr, nullptr) != LOADMON_OK) return 1;
    static_assert(LOADMON_VERSION_MAJOR >= 0 && LOADMON_WAIT_FOREVER < 0, "macros");
    return cfg.port == 1234 && loadmon_version() != nullptr &&
                   std::strcmp(loadmon_status_str(LOADMON_OK), "ok") == 0
               ? 0
               : 1;
}
