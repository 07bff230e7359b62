// The generated header compiles as C++ (extern "C", no C-only constructs).
#include "loadmon.h"

int main() {
    LoadmonServerConfig cfg;
    loadmon_server_config_default(&cfg);
    return cfg.port == 1234 && loadmon_version() != nullptr ? 0 : 1;
}
