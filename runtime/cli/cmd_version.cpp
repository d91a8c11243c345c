#include <cstdio>

#include <caf/config.hpp>
#include <nats/nats.h>

#include "runtime/cli/commands.hpp"
#include "runtime/common/version.hpp"

namespace troupe {

int cmd_version() {
  std::printf("troupe %s (CAF %d.%d.%d, nats.c %s)\n", version(),
              CAF_VERSION / 10000, (CAF_VERSION / 100) % 100, CAF_VERSION % 100,
              nats_GetVersion());
  return 0;
}

} // namespace troupe
