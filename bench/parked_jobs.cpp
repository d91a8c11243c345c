// Measures the memory cost of a job waiting for a retry: N jobs whose first
// attempt fails are parked on a 10-minute backoff timer; RSS is read before
// and after. Usage: bench_parked_jobs [N] (default 100000).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <malloc.h>

#include "actors/atoms.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "messages/event_type.hpp"

using namespace troupe;

namespace {

long rss_kib() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

/// A store that accepts everything: the benchmark measures the actors.
store_actor::behavior_type null_store(store_actor::pointer) {
  auto epochs = std::make_shared<std::int64_t>(0);
  return {
      [epochs](claim_atom, job_spec& spec) {
        job_snapshot s;
        s.spec = std::move(spec);
        s.state = job_state::running;
        s.epoch = ++*epochs;
        return s;
      },
      [](job_write&) { return ok_atom::value; },
  };
}

} // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 100000;
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("scheduler.max-threads", std::size_t{2});
  if (auto p = std::getenv("TROUPE_SCHEDULER"))
    cfg.set("scheduler.policy", caf::atom_from_string(p));
  caf::actor_system sys{cfg};
  std::atomic<int> parked{0};
  auto events = sys.spawn([&parked](caf::event_based_actor*) -> caf::behavior {
    return {
        [&parked](const job_event& ev) {
          if (type_of(ev) == event_type::job_retrying)
            ++parked;
        },
        [&parked](const std::vector<job_event>& evs) {
          for (const auto& ev : evs)
            if (type_of(ev) == event_type::job_retrying)
              ++parked;
        },
    };
  });
  pipeline_config pc;
  pc.name = "bench";
  pc.max_in_flight = n + 1;
  stage_config sc;
  sc.name = "flaky";
  sc.kind = "fault";
  sc.params = {{"fail_first", 1}};
  sc.retry.max_attempts = 3;
  sc.retry.initial = std::chrono::minutes{10};
  sc.retry.jitter = jitter_kind::none;
  pc.stages.push_back(sc);
  auto def = make_pipeline_def(pc, builtin_stage_registry());
  auto deps = std::make_shared<job_deps>();
  deps->store = sys.spawn(null_store);
  deps->events = events;
  deps->node_id = "bench";
  deps->now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  supervisor_deps sd;
  sd.job = deps;
  auto sup =
      caf::actor_cast<caf::actor>(spawn_pipeline_supervisor(sys, *def, sd));
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  auto before = rss_kib();
  auto heap_before = mallinfo2().uordblks;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    job_spec spec;
    spec.job_id = "job-" + std::to_string(i);
    spec.pipeline = "bench";
    spec.payload = R"({"doc":"some/path/to/a/document.txt","n":1})";
    caf::anon_send(sup, submit_atom::value, std::move(spec),
                   static_cast<std::uint64_t>(i));
  }
  while (parked.load() < n)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  auto t1 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds{500});
  auto after = rss_kib();
  // Return freed heap pages to the OS: what remains is what parked jobs hold,
  // not what the submission burst left in malloc's free lists.
  malloc_trim(0);
  auto trimmed = rss_kib();
  auto heap_after = mallinfo2().uordblks;
  double secs = std::chrono::duration<double>(t1 - t0).count();
  std::printf("parked_jobs: %d jobs parked in backoff in %.2f s (%.0f "
              "jobs/s)\n",
              n, secs, n / secs);
  std::printf("parked_jobs: RSS before %ld KiB, after %ld KiB, %.2f KiB per "
              "parked job\n",
              before, after, static_cast<double>(after - before) / n);
  std::printf("parked_jobs: after malloc_trim %ld KiB, %.2f KiB per parked "
              "job\n",
              trimmed, static_cast<double>(trimmed - before) / n);
  // What the parked jobs hold in the heap (malloc's view): RSS minus what
  // fragmentation of the burst keeps resident.
  std::printf("parked_jobs: heap in use %.2f KiB per parked job (main arena)\n",
              static_cast<double>(heap_after - heap_before) / 1024.0 / n);
  std::fflush(stdout);
  std::_Exit(0); // skip tearing down 100k actors: not what is measured
}
