#pragma once

// Waiting for a condition instead of sleeping a fixed time: integration
// tests poll what they wait for (a row count, a metric, a log line) and go
// on the moment it holds, however fast or slow the machine is.

#include <chrono>
#include <thread>

namespace troupe::test {

/// Polls `done()` every `every` until it returns true or `timeout` passes;
/// returns its last answer.
template <class F>
bool eventually(F&& done,
                std::chrono::milliseconds timeout = std::chrono::seconds{60},
                std::chrono::milliseconds every = std::chrono::milliseconds{
                    50}) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done())
      return true;
    if (std::chrono::steady_clock::now() >= end)
      return false;
    std::this_thread::sleep_for(every);
  }
}

} // namespace troupe::test
