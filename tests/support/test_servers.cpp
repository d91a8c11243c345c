#include "tests/support/test_servers.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "messages/errc.hpp"
#include "runtime/exec/process.hpp"

namespace troupe::test {

namespace {

bool can_bind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

/// The first port of the kernel's ephemeral range (32768 by default).
int ephemeral_start() {
  std::ifstream in{"/proc/sys/net/ipv4/ip_local_port_range"};
  int low = 0;
  return in >> low && low > 11000 ? low : 32768;
}

} // namespace

// Ports are drawn below the ephemeral range: a port bind(0) hands out is one
// any outgoing connection of a parallel test may take before the server
// binds it (CI saw a cluster test's nats-server fail to start that way). Each
// process hands out a port once.
int free_port() {
  static std::mutex mutex;
  static std::set<int> given;
  static std::mt19937 rng{std::random_device{}() ^
                          static_cast<unsigned>(getpid())};
  std::lock_guard<std::mutex> lock{mutex};
  std::uniform_int_distribution<int> pick{10000, ephemeral_start() - 1};
  for (int tries = 0; tries < 1000; ++tries) {
    int port = pick(rng);
    if (given.count(port) == 0 && can_bind(port)) {
      given.insert(port);
      return port;
    }
  }
  std::fprintf(stderr, "free_port: no free port below the ephemeral range\n");
  std::abort();
}

test_servers::test_servers() {
  char tmpl[] = "/tmp/troupe-test-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    std::abort();
  }
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);
  nats_port_ = free_port();
  if (auto err = nats_.start(dir_, nats_port_)) {
    std::fprintf(stderr, "test_servers: %s\n", describe(err).c_str());
    std::abort();
  }
  pg_port_ = free_port();
  if (auto err = pg_.start(dir_, pg_port_)) {
    std::fprintf(stderr, "test_servers: %s\n", describe(err).c_str());
    nats_.stop();
    std::abort();
  }
}

test_servers::~test_servers() {
  pg_.stop();
  nats_.stop();
  if (std::getenv("TROUPE_KEEP_TEST_DIRS") == nullptr)
    run_command({"rm", "-rf", dir_}, std::chrono::seconds{60});
}

} // namespace troupe::test
