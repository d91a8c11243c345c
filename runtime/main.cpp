// Entry point of the `troupe` binary; everything else is in run_cli().
#include "runtime/commands.hpp"

int main(int argc, char** argv) {
  return troupe::run_cli(argc, argv);
}
