#include "runtime/common/latency_probe.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#include <spdlog/spdlog.h>

namespace troupe::latency_probe {

namespace {

struct stamp {
  std::string job;
  const char* point;
  std::int64_t us;
};

/// Filled by many threads at a few hundred jobs a second: one lock is
/// cheap enough, and nothing is written to disk until the end, so the
/// probe adds no I/O to the path it measures.
struct recorder {
  std::mutex mtx;
  std::vector<stamp> stamps;
  std::string path;

  recorder() {
    if (const char* p = std::getenv("TROUPE_LATENCY_PROBE"); p && *p)
      path = std::string{p} + "." + std::to_string(getpid());
  }

  ~recorder() { flush(); }

  void flush() {
    std::lock_guard<std::mutex> guard{mtx};
    if (path.empty() || stamps.empty())
      return;
    FILE* f = std::fopen(path.c_str(), "a");
    if (!f) {
      // The operator asked for the file: say why there is none.
      spdlog::warn("latency probe: cannot write {} ({}); {} stamps dropped",
                   path, std::strerror(errno), stamps.size());
      stamps.clear();
      return;
    }
    for (const auto& s : stamps)
      std::fprintf(f, "%s %s %lld\n", s.job.c_str(), s.point,
                   static_cast<long long>(s.us));
    std::fclose(f);
    stamps.clear();
  }
};

recorder& the_recorder() {
  static recorder r;
  return r;
}

} // namespace

bool enabled() {
  static const bool on = !the_recorder().path.empty();
  return on;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void mark_at(std::string_view job_id, const char* point, std::int64_t us) {
  if (!enabled())
    return;
  auto& r = the_recorder();
  std::lock_guard<std::mutex> guard{r.mtx};
  if (r.stamps.size() < max_stamps)
    r.stamps.push_back({std::string{job_id}, point, us});
}

void mark(std::string_view job_id, const char* point) {
  if (enabled())
    mark_at(job_id, point, now_us());
}

void write_out() {
  if (enabled())
    the_recorder().flush();
}

} // namespace troupe::latency_probe
