// Entry point of the `troupe` binary; everything else is in run_cli().
#include "runtime/commands.hpp"
#include "runtime/nats_client.hpp"
#include "runtime/shutdown.hpp"

int main(int argc, char** argv) {
  // First, before any thread starts: SIGINT/SIGTERM become a shutdown
  // request that every component can wait on.
  troupe::install_shutdown_handlers();
  int rc = troupe::run_cli(argc, argv);
  troupe::close_nats_library();
  return rc;
}
