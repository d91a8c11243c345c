// Entry point of the `troupe` binary; everything else is in run_cli().
#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "runtime/cli/commands.hpp"
#include "runtime/common/shutdown.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/observe/crash_report.hpp"

int main(int argc, char** argv) {
  // First, before any thread starts: SIGINT/SIGTERM become a shutdown
  // request that every component can wait on.
  troupe::install_shutdown_handlers();
  troupe::install_crash_report();
  int rc = troupe::run_cli(argc, argv);
  troupe::close_nats_library();
  // Leave without running exit handlers: after a failed TLS handshake,
  // nats.c 3.4.1 leaves OpenSSL's heap state damaged and OPENSSL_cleanup
  // aborts at exit (seen under gdb), which would turn exit code 1 or 2 into
  // a crash. Everything that matters is closed or flushed by now.
  std::fflush(nullptr);
  spdlog::shutdown();
  std::_Exit(rc);
}
