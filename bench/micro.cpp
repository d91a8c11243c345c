// Micro benchmarks (Google Benchmark) of the hot pieces: a job actor's whole
// life with a store that answers at once, one actor message round trip, the
// JSON codecs of a job, and the backoff computation.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <spawn.h>
#include <sys/wait.h>

#include <benchmark/benchmark.h>
#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "actors/backoff.hpp"
#include "actors/builtin_stages.hpp"
#include "actors/pipeline_supervisor.hpp"
#include "messages/event_type.hpp"
#include "messages/json_codec.hpp"

using namespace troupe;

namespace {

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

const char* payload =
    R"({"doc":"s3://bucket/some/path/document-1.json","n":1})";

/// Jobs through a 3-stage noop pipeline (supervisor, job actors, stage
/// actors, ordered writes) with an in-memory store: the engine's own cost.
void BM_JobActorLifecycle(benchmark::State& state) {
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("scheduler.max-threads", std::size_t{2});
  caf::actor_system sys{cfg};
  std::atomic<std::int64_t> done{0};
  auto intake = sys.spawn([&done](caf::event_based_actor*) -> caf::behavior {
    return {[&done](finished_atom, std::uint64_t, job_result&) { ++done; }};
  });
  pipeline_config pc;
  pc.name = "micro";
  pc.max_in_flight = 100000;
  for (auto name : {"a", "b", "c"}) {
    stage_config sc;
    sc.name = name;
    sc.kind = "noop";
    pc.stages.push_back(sc);
  }
  auto def = make_pipeline_def(pc, builtin_stage_registry());
  auto deps = std::make_shared<job_deps>();
  deps->store = sys.spawn(null_store);
  deps->node_id = "micro";
  deps->now_ms = [] { return std::int64_t{0}; };
  supervisor_deps sd;
  sd.job = deps;
  sd.intake = intake;
  auto sup =
      caf::actor_cast<caf::actor>(spawn_pipeline_supervisor(sys, *def, sd));
  const int batch = static_cast<int>(state.range(0));
  std::uint64_t next = 0;
  for (auto _ : state) {
    auto target = done.load() + batch;
    for (int i = 0; i < batch; ++i) {
      job_spec spec;
      spec.job_id = "j" + std::to_string(next);
      spec.pipeline = "micro";
      spec.payload = payload;
      caf::anon_send(sup, submit_atom::value, std::move(spec), next++);
    }
    while (done.load() < target)
      std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(intake, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(deps->store, caf::exit_reason::user_shutdown);
}
BENCHMARK(BM_JobActorLifecycle)->Arg(1)->Arg(1000)->UseRealTime();

/// One request/response between two actors (a stage reporting to its job
/// is one such message).
void BM_ActorRoundTrip(benchmark::State& state) {
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto echo = sys.spawn([](caf::event_based_actor*) -> caf::behavior {
    return {[](std::int64_t x) { return x + 1; }};
  });
  caf::scoped_actor self{sys};
  std::int64_t x = 0;
  for (auto _ : state)
    self->request(echo, caf::infinite, x)
        .receive([&](std::int64_t y) { x = y; }, [](caf::error&) {});
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(state.iterations());
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}
BENCHMARK(BM_ActorRoundTrip)->UseRealTime();

/// The same round trip between two plain threads (a mutex and a condition
/// variable each way, as a job's write goes to the store's writer thread
/// and its answer comes back): what a thread hand-off costs on this
/// machine without CAF. Both sleep while they wait, as idle threads do at
/// 200 jobs/s.
void BM_ThreadRoundTrip(benchmark::State& state) {
  std::mutex mtx;
  std::condition_variable cv;
  std::int64_t sent = 0, answered = 0;
  bool stop = false;
  std::thread echo{[&] {
    std::unique_lock<std::mutex> lock{mtx};
    for (;;) {
      cv.wait(lock, [&] { return stop || sent > answered; });
      if (stop)
        return;
      answered = sent;
      cv.notify_all();
    }
  }};
  for (auto _ : state) {
    std::unique_lock<std::mutex> lock{mtx};
    ++sent;
    cv.notify_all();
    cv.wait(lock, [&] { return answered == sent; });
  }
  {
    std::lock_guard<std::mutex> guard{mtx};
    stop = true;
  }
  cv.notify_all();
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ThreadRoundTrip)->UseRealTime();

void BM_DecodeSubmission(benchmark::State& state) {
  std::string body =
      std::string{
          R"({"pipeline":"ingest","key":"k-1","tenant":"acme","payload":)"} +
      payload + "}";
  for (auto _ : state) {
    auto s = decode_submission(body);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_DecodeSubmission);

void BM_EncodeEvent(benchmark::State& state) {
  job_event ev;
  ev.type = to_string(event_type::stage_succeeded);
  ev.job_id = "j01m83v48ea84w2c9f18kvba";
  ev.pipeline = "ingest";
  ev.stage = "fetch";
  ev.stage_index = 0;
  ev.attempt = 1;
  ev.node = "node-1";
  ev.time_ms = 1795424499000;
  ev.duration_ms = 12;
  for (auto _ : state) {
    auto s = encode_event(ev);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_EncodeEvent);

void BM_RetryDelay(benchmark::State& state) {
  retry_policy p;
  p.max_attempts = 10;
  p.initial = std::chrono::milliseconds{100};
  p.max = std::chrono::milliseconds{60000};
  p.multiplier = 2.0;
  p.jitter = jitter_kind::full;
  jitter_rng rng;
  rng.seed(42);
  int attempt = 1;
  for (auto _ : state) {
    auto d = retry_delay(p, attempt, rng);
    benchmark::DoNotOptimize(d);
    attempt = attempt % 9 + 1;
  }
}
BENCHMARK(BM_RetryDelay);

/// The exec stage's ceiling: starting `/bin/true` with posix_spawn (as an
/// exec attempt starts its program) and waiting for it, nothing else.
void BM_SpawnTrue(benchmark::State& state) {
  char arg0[] = "/bin/true";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {nullptr};
  for (auto _ : state) {
    pid_t pid = 0;
    if (posix_spawn(&pid, arg0, nullptr, nullptr, argv, envp) != 0) {
      state.SkipWithError("posix_spawn failed");
      return;
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }
}
BENCHMARK(BM_SpawnTrue)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
