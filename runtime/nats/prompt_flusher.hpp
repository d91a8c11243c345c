#pragma once

// Sends what a connection has buffered now, for the few publishes a client
// is waiting on (a reply, a job's events).
//
// nats.c's own flusher thread, once woken by a publish, waits up to 1 ms
// for more before it writes (conn.c, _flusher): good for throughput, but a
// lone reply or event then waits that long on an idle node. `send_asap`
// writes every publish at once and cost 10 % of the durable throughput
// (docs/benchmarks.md, session 19). A prompt flush writes the buffer once
// for everything published so far: a thread of its own runs
// natsConnection_FlushTimeout, which writes the buffer and waits for the
// server's PONG; kicks during that wait ask for one more flush, so a
// burst costs two round trips, and at most one flush starts per
// `min_gap` (under load nats.c's own flusher is as quick).

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nats/nats.h>

namespace troupe {

class prompt_flusher {
public:
  explicit prompt_flusher(
      natsConnection* conn,
      std::chrono::microseconds min_gap = std::chrono::microseconds{200});
  ~prompt_flusher();
  prompt_flusher(const prompt_flusher&) = delete;
  prompt_flusher& operator=(const prompt_flusher&) = delete;

  /// Asks for a flush soon; never blocks on the network.
  void kick();

  /// Flushes done so far (for tests and metrics).
  std::uint64_t flushes() const;

private:
  void run();

  natsConnection* conn_;
  std::chrono::microseconds min_gap_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stop_ = false;
  std::uint64_t flushes_ = 0;
  std::thread thread_;
};

} // namespace troupe
