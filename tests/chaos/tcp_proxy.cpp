#include "tcp_proxy.hpp"

#include <algorithm>
#include <cerrno>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace troupe::chaos {

namespace {

constexpr std::size_t buffer_limit = 1 << 20;
// A slow link holds little, so the sender soon feels it (its socket fills
// and nats-server's writes to a slow consumer stall).
constexpr std::size_t throttled_buffer_limit = 64 << 10;

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

void nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// A blocking connect to the server (loopback: it answers or refuses at
/// once); -1 when it refuses.
int connect_upstream(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto a = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  nonblocking(fd);
  return fd;
}

} // namespace

struct tcp_proxy::pair {
  int client = -1;
  int server = -1; ///< -1 until the first moment the path is not cut
  std::string to_server, to_client;
  bool dead = false;
};

tcp_proxy::tcp_proxy(int upstream_port) : upstream_port_(upstream_port) {
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = loopback(0);
  bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(listener_, 128);
  socklen_t len = sizeof a;
  getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  nonblocking(listener_);
  refilled_ = std::chrono::steady_clock::now();
  thread_ = std::thread{[this] { loop(); }};
}

tcp_proxy::~tcp_proxy() {
  stop_ = true;
  thread_.join();
  for (auto& p : pairs_) {
    close(p->client);
    if (p->server >= 0)
      close(p->server);
  }
  close(listener_);
}

void tcp_proxy::accept_one() {
  int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  nonblocking(fd);
  auto p = std::make_unique<pair>();
  p->client = fd;
  pairs_.push_back(std::move(p));
  ++open_;
}

std::size_t tcp_proxy::held_limit() const {
  return rate_ != 0 ? throttled_buffer_limit : buffer_limit;
}

/// Moves what `from` has into the buffer towards `to`, then writes that
/// buffer; false when either side closed.
bool tcp_proxy::pump(pair& p, int from, int to) {
  auto& buf = from == p.client ? p.to_server : p.to_client;
  auto limited = rate_ != 0;
  char chunk[65536];
  while (buf.size() < held_limit()) {
    auto n = read(from, chunk, sizeof chunk);
    if (n == 0)
      return false;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      return false;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  auto& budget = from == p.client ? to_server_budget_ : to_client_budget_;
  while (!buf.empty()) {
    auto want = buf.size();
    if (limited &&
        (want = std::min(want, static_cast<std::size_t>(budget))) == 0)
      break;
    auto n = write(to, buf.data(), want);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK;
    buf.erase(0, static_cast<std::size_t>(n));
    if (limited)
      budget -= static_cast<double>(n);
  }
  return true;
}

/// Adds the bytes a throttled path may move since the last pass; at most a
/// tenth of a second's worth is saved up, so a quiet link does not burst.
void tcp_proxy::refill() {
  auto now = std::chrono::steady_clock::now();
  auto rate = static_cast<double>(rate_.load());
  auto dt = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  for (auto* b : {&to_server_budget_, &to_client_budget_})
    *b = std::min(*b + rate * dt, rate / 10);
}

void tcp_proxy::loop() {
  while (!stop_) {
    std::vector<pollfd> fds{{listener_, POLLIN, 0}};
    bool cut = cut_;
    for (auto& p : pairs_) {
      if (cut)
        continue;
      if (p->server < 0 && (p->server = connect_upstream(upstream_port_)) < 0)
        p->dead = true;
      if (p->dead)
        continue;
      // A side whose bytes cannot be held now is not read (nor polled:
      // that would spin while a slow or stopped receiver catches up).
      auto room = [this](const std::string& held) {
        return static_cast<short>(held.size() < held_limit() ? POLLIN : 0);
      };
      fds.push_back({p->client, room(p->to_server), 0});
      fds.push_back({p->server, room(p->to_client), 0});
    }
    poll(fds.data(), fds.size(), 20);
    refill();
    if (fds[0].revents & POLLIN)
      accept_one();
    if (!cut_) // as of now: a cut during the poll holds what came in it
      for (auto& p : pairs_)
        if (!p->dead && p->server >= 0)
          p->dead = !pump(*p, p->client, p->server) ||
                    !pump(*p, p->server, p->client);
    auto gone = std::remove_if(pairs_.begin(), pairs_.end(), [this](auto& p) {
      if (!p->dead)
        return false;
      close(p->client);
      if (p->server >= 0)
        close(p->server);
      --open_;
      return true;
    });
    pairs_.erase(gone, pairs_.end());
  }
}

} // namespace troupe::chaos
