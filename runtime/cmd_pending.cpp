// Commands whose machinery arrives with later issues. They say so clearly and
// exit with status 3 so that scripts cannot mistake them for success.
#include <cstdio>

#include "runtime/commands.hpp"

namespace troupe {

namespace {

int not_yet(const char* what) {
  std::fprintf(stderr,
               "troupe: '%s' is not available in this build yet (see the "
               "open issues in docs/roadmap.md)\n",
               what);
  return 3;
}

} // namespace

int cmd_shell(const shell_options&) {
  return not_yet("shell");
}

} // namespace troupe
