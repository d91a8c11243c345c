#pragma once

// A TCP proxy on 127.0.0.1 that the chaos harness puts between one node and
// one server, so that a network partition can cut exactly that path while
// everything stays on loopback (the test rule: servers on 127.0.0.1 only).
//
// A partition is a blackhole, as a real one is: bytes already in flight stay
// where they are, new bytes are not moved in either direction, and new
// connections are accepted and then left silent. Nothing is reset, so the
// node notices only through its own timeouts, pings and leases. Healing
// moves the held bytes on, as TCP retransmission would.

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::chaos {

class tcp_proxy {
public:
  /// Listens on a free loopback port and forwards to 127.0.0.1:upstream.
  explicit tcp_proxy(int upstream_port);
  ~tcp_proxy();

  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  int port() const noexcept { return port_; }

  /// Cuts (true) or heals (false) the path.
  void partition(bool cut) { cut_ = cut; }
  bool partitioned() const noexcept { return cut_; }

  /// Connections currently open through the proxy.
  int connections() const noexcept { return open_; }

private:
  struct pair;
  void loop();
  void accept_one();
  bool pump(pair& p, int from, int to);

  int listener_ = -1;
  int port_ = 0;
  int upstream_port_ = 0;
  std::atomic<bool> cut_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0};
  std::vector<std::unique_ptr<pair>> pairs_;
  std::thread thread_;
};

} // namespace troupe::chaos
