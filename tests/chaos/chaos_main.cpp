// troupe_chaos: one seed of the chaos suite (docs/reliability.md).
//
//   troupe_chaos --seed 7 [--jobs 1500] [--seconds 60] [--settle 240]
//                [--dir DIR] [--keep] [--nats-crash|--gentle-nats]
//                [--lenient-stream] [--restart-broker]
//   troupe_chaos --soak SECONDS [--rate JOBS_PER_S] [--samples FILE.tsv]
//
// Prints the run's narration, then one verdict line:
//   chaos seed=7 PASS jobs=1500 faults=19 (...) effects=... reruns=... 212.4s
// and, when it fails, every violation and the command that replays the seed.
// When, after the drain bound, the stream does not answer or still holds
// messages after its replicas came apart (nats-server 2.9.10 after a replica
// reset), the nats-servers are restarted one at a time, as an operator
// would, before the verdict; --restart-broker always does.
// Exit code: 0 pass, 1 violations, 2 the cluster could not start.

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "chaos_run.hpp"

using namespace troupe::chaos;

namespace {

bool parse(int argc, char** argv, run_options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--seed")
      o.seed = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--jobs")
      o.jobs = std::atoi(value().c_str());
    else if (a == "--seconds")
      o.load_seconds = std::atoi(value().c_str());
    else if (a == "--settle")
      o.settle_seconds = std::atoi(value().c_str());
    else if (a == "--dir")
      o.dir = value();
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--nats-crash")
      o.nats_faults = 2;
    else if (a == "--gentle-nats")
      o.nats_faults = 0;
    else if (a == "--lenient-stream")
      o.strict_stream = false;
    else if (a == "--restart-broker")
      o.restart_broker = true;
    else if (a == "--soak")
      o.soak_seconds = std::atoi(value().c_str());
    else if (a == "--rate")
      o.rate = std::atoi(value().c_str());
    else if (a == "--samples")
      o.samples = value();
    else {
      std::cerr << "troupe_chaos: unknown argument '" << a << "'\n";
      return false;
    }
  }
  return o.jobs > 0 && o.load_seconds >= 10 && o.settle_seconds > 0;
}

} // namespace

int main(int argc, char** argv) {
  run_options o;
  if (!parse(argc, argv, o)) {
    std::cerr
        << "usage: troupe_chaos --seed N [--jobs N] [--seconds S>=10] "
           "[--settle S] [--dir DIR] [--keep] [--nats-crash|--gentle-nats]\n"
           "       troupe_chaos --soak S [--rate N] [--samples F]\n";
    return 2;
  }
  auto r = run_chaos(o, std::cout);
  if (!r.setup_error.empty()) {
    std::cout << "chaos seed=" << o.seed << " SETUP-FAILED " << r.setup_error
              << "\n  logs: " << r.dir << "\n";
    return 2;
  }
  std::string states;
  for (auto& [s, n] : r.v.states)
    states += " " + s + "=" + std::to_string(n);
  std::cout << "chaos seed=" << o.seed << (r.v.ok() ? " PASS" : " FAIL")
            << " jobs=" << r.jobs << states << " faults=" << r.faults << " ("
            << r.fault_kinds << ") effects=" << r.v.effects
            << " reruns=" << r.v.reruns << " " << static_cast<int>(r.seconds)
            << "s\n";
  if (!r.v.broker.empty())
    std::cout << "  broker: replicas apart first at " << r.v.broker << "\n";
  if (r.broker_restarted)
    std::cout << "  broker: the nats-servers were restarted one at a time "
                 "before the verdict (logs: "
              << r.dir << ")\n";
  if (!r.tidied.empty())
    std::cout << "  broker: messages were still left after the restart; "
                 "tidy answered "
              << r.tidied << "\n";
  for (auto& v : r.v.violations)
    std::cout << "  violation: " << v << "\n";
  for (auto& n : r.v.notes)
    std::cout << "  note: " << n << "\n";
  if (!r.v.ok())
    std::cout << "  logs: " << r.dir << "\n  replay: scripts/chaos.sh --seed "
              << o.seed << " --jobs " << o.jobs << " --seconds "
              << o.load_seconds
              << (o.nats_faults == 2   ? " --nats-crash"
                  : o.nats_faults == 0 ? " --gentle-nats"
                                       : "")
              << (o.strict_stream ? "" : " --lenient-stream") << "\n";
  else if (!o.keep && !r.broker_restarted)
    std::filesystem::remove_all(r.dir);
  return r.v.ok() ? 0 : 1;
}
