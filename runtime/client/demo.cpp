#include "runtime/client/demo.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

namespace {

double percentile(std::vector<double>& xs, double p) {
  if (xs.empty())
    return 0.0;
  std::sort(xs.begin(), xs.end());
  auto idx = static_cast<std::size_t>(p * (xs.size() - 1) + 0.5);
  return xs[std::min(idx, xs.size() - 1)];
}

/// The demo's submissions: ids chosen by the publisher (idempotency keys),
/// so the run can be followed before the replies arrive.
struct demo_batch {
  std::vector<std::string> bodies;
  std::vector<std::string> ids;
  int poison = 0;
};

demo_batch make_batch(const demo_options& opts) {
  auto run_id =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  demo_batch b;
  for (int i = 0; i < opts.jobs; ++i) {
    auto id = "demo-" + run_id + "-" + std::to_string(i);
    bool is_poison = opts.poison_every > 0 && i % opts.poison_every == 7;
    b.poison += is_poison;
    nlohmann::json payload{{"n", i}, {"text", "document " + std::to_string(i)}};
    if (is_poison)
      payload["poison"] = true;
    nlohmann::json req{{"pipeline", opts.pipeline},
                       {"key", id},
                       {"tenant", "demo"},
                       {"payload", payload}};
    b.bodies.push_back(req.dump());
    b.ids.push_back(id);
  }
  return b;
}

/// Submissions refused by the API, with the first reason on stderr.
int count_rejected(const std::vector<submit_reply>& replies) {
  int rejected = 0;
  for (auto& r : replies)
    rejected += !r.ok;
  if (rejected > 0)
    std::fprintf(stderr, "demo: %d submissions rejected (first: %s)\n",
                 rejected,
                 std::find_if(replies.begin(), replies.end(), [](auto& r) {
                   return !r.ok;
                 })->error_message.c_str());
  return rejected;
}

/// Waits for every job's terminal state, drawing progress: a bar on a
/// terminal, a line a second otherwise.
bool follow(job_tracker& tracker, int timeout_s) {
  bool tty = isatty(STDOUT_FILENO);
  auto last_print = std::chrono::steady_clock::time_point{};
  bool all = tracker.wait_all(
      std::chrono::seconds{timeout_s}, [&](std::size_t done, std::size_t n) {
        auto now = std::chrono::steady_clock::now();
        if (tty) {
          std::printf("\r%s", progress_bar(done, n).c_str());
          std::fflush(stdout);
        } else if (now - last_print >= std::chrono::seconds{1} || done == n) {
          std::printf("progress: %zu/%zu jobs finished\n", done, n);
          std::fflush(stdout);
          last_print = now;
        }
      });
  if (tty)
    std::printf("\n");
  return all;
}

struct demo_tally {
  int succeeded = 0, dead = 0, cancelled = 0, retried = 0, retries = 0;
  std::vector<double> latency_ms;
  std::string first_dead_error;
};

demo_tally tally(const std::map<std::string, tracked_job>& jobs) {
  demo_tally t;
  for (auto& kv : jobs) {
    auto& j = kv.second;
    t.retried += j.retries > 0;
    t.retries += j.retries;
    if (j.state == "succeeded") {
      ++t.succeeded;
      t.latency_ms.push_back(
          std::chrono::duration<double, std::milli>(j.finished - j.submitted)
              .count());
    } else if (j.state == "dead_lettered") {
      ++t.dead;
      if (t.first_dead_error.empty())
        t.first_dead_error = j.error;
    } else if (j.state == "cancelled") {
      ++t.cancelled;
    }
  }
  return t;
}

void print_summary(const demo_options& opts, demo_tally& t, int rejected,
                   std::size_t tracked, double secs) {
  int finished = t.succeeded + t.dead + t.cancelled;
  std::printf("\n== troupe demo summary ==\n");
  std::printf("  jobs submitted     %d (%d rejected)\n", opts.jobs, rejected);
  std::printf("  succeeded          %d\n", t.succeeded);
  std::printf("  retried            %d jobs (%d retries)\n", t.retried,
              t.retries);
  std::printf("  dead-lettered      %d%s%s\n", t.dead,
              t.first_dead_error.empty() ? "" : "  e.g. ",
              t.first_dead_error.c_str());
  if (t.cancelled)
    std::printf("  cancelled          %d\n", t.cancelled);
  std::printf("  unfinished         %d\n",
              static_cast<int>(tracked) - finished);
  std::printf("  wall time          %.2f s\n", secs);
  std::printf("  throughput         %.0f jobs/s\n",
              secs > 0 ? finished / secs : 0.0);
  std::printf("  latency (submit -> succeeded)  p50 %.1f ms  p99 %.1f ms\n",
              percentile(t.latency_ms, 0.50), percentile(t.latency_ms, 0.99));
  std::printf("\nnext: keep a cluster running with `troupe dev` and look at "
              "it with `troupe shell --nats %s -c \"nodes; stats\"`\n",
              redact_url(opts.nats_url).c_str());
  std::fflush(stdout);
}

} // namespace

int run_demo(const demo_options& opts) {
  nats_connect_options co;
  co.urls = opts.nats_url;
  co.name = "troupe-demo";
  auto nats = nats_client::connect(co);
  if (!nats) {
    std::fprintf(stderr, "demo: %s\n", describe(nats.error()).c_str());
    return 1;
  }
  subjects subj{opts.prefix};
  job_tracker tracker{*nats, subj, opts.pipeline};
  if (auto err = tracker.start()) {
    std::fprintf(stderr, "demo: %s\n", describe(err).c_str());
    return 1;
  }
  auto batch = make_batch(opts);
  std::printf("demo: submitting %d jobs to pipeline '%s' (%d poison) via "
              "%s\n",
              opts.jobs, opts.pipeline.c_str(), batch.poison,
              subj.submit().c_str());
  std::fflush(stdout);
  auto t0 = std::chrono::steady_clock::now();
  for (auto& id : batch.ids)
    tracker.submitted(id);
  auto replies = submit_requests(**nats, subj, batch.bodies, 256,
                                 std::chrono::seconds{120});
  if (!replies) {
    std::fprintf(stderr, "demo: %s\n", describe(replies.error()).c_str());
    return 1;
  }
  int rejected = count_rejected(*replies);
  bool all = follow(tracker, opts.timeout_s);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  auto jobs = tracker.jobs();
  auto t = tally(jobs);
  print_summary(opts, t, rejected, jobs.size(), secs);
  return all ? 0 : 1;
}

} // namespace troupe
