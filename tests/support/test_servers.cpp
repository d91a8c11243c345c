#include "tests/support/test_servers.hpp"

#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "messages/errc.hpp"
#include "runtime/exec/process.hpp"

namespace troupe::test {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
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
