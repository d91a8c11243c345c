#pragma once

// PostgreSQL connection strings as troupe uses them.

#include <string>

namespace troupe {

/// `url` with `connect_timeout=3` added unless it sets one: a connection
/// attempt to an unreachable server (a dropped SYN, a hung proxy) must not
/// block a writer, the intake or an admin thread for the kernel's TCP
/// timeout (minutes).
inline std::string with_connect_timeout(std::string url) {
  if (url.find("connect_timeout") != std::string::npos)
    return url;
  if (url.rfind("postgres", 0) == 0)
    return url + (url.find('?') == std::string::npos ? "?" : "&") +
           "connect_timeout=3";
  return url + " connect_timeout=3";
}

} // namespace troupe
