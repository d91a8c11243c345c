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
//
// A throttled path is a slow link: bytes move at most at the given rate
// each way, the proxy's buffer fills, and then the sender's socket does, as
// behind a congested route (the server sees a slow consumer).

#include <atomic>
#include <chrono>
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

  /// Limits each direction to `bytes_per_s` (0: no limit).
  void throttle(std::size_t bytes_per_s) { rate_ = bytes_per_s; }

  /// Connections currently open through the proxy.
  int connections() const noexcept { return open_; }

private:
  struct pair;
  void loop();
  void accept_one();
  bool pump(pair& p, int from, int to);
  void refill();
  std::size_t held_limit() const;

  int listener_ = -1;
  int port_ = 0;
  int upstream_port_ = 0;
  std::atomic<bool> cut_{false};
  std::atomic<std::size_t> rate_{0};
  // What each direction may still write in this slice of time (throttled).
  double to_server_budget_ = 0, to_client_budget_ = 0;
  std::chrono::steady_clock::time_point refilled_;
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0};
  std::vector<std::unique_ptr<pair>> pairs_;
  std::thread thread_;
};

} // namespace troupe::chaos
