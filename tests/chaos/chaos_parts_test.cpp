// The chaos harness's own parts, tested without a cluster: the fault plan a
// seed draws (the same seed must replay the same schedule, and the schedule
// must keep its rules) and the proxy that cuts and slows a node's links.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/chaos/chaos_cluster.hpp"
#include "tests/chaos/fault_plan.hpp"
#include "tests/chaos/tcp_proxy.hpp"
#include "tests/chaos/verdict.hpp"

using namespace troupe::chaos;
using namespace std::chrono_literals;

namespace {

constexpr int run_ms = 45000;

std::vector<std::string> described(const std::vector<fault>& plan) {
  std::vector<std::string> out;
  for (auto& f : plan)
    out.push_back(describe(f));
  return out;
}

bool is_pg_fault(fault_kind k) {
  return k == fault_kind::pg_restart || k == fault_kind::pg_outage;
}

bool is_nats_fault(fault_kind k) {
  return k == fault_kind::nats_restart || k == fault_kind::nats_loss ||
         k == fault_kind::nats_crash || k == fault_kind::leader_move;
}

// [from, to) of a fault, with the half second the planner keeps free after.
std::pair<int, int> span(const fault& f) {
  return {f.at_ms, f.at_ms + f.hold_ms + 500};
}

bool overlap(std::pair<int, int> a, std::pair<int, int> b) {
  return a.first < b.second && b.first < a.second;
}

} // namespace

TEST(FaultPlan, TheSameSeedDrawsTheSameSchedule) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    auto a = described(draw_plan(seed, run_ms, true, 1));
    ASSERT_FALSE(a.empty()) << "seed " << seed;
    EXPECT_EQ(a, described(draw_plan(seed, run_ms, true, 1))) << seed;
  }
  EXPECT_NE(described(draw_plan(1, run_ms, true, 1)),
            described(draw_plan(2, run_ms, true, 1)));
}

TEST(FaultPlan, EachLevelDrawsOnlyItsNatsFaults) {
  std::map<int, std::map<fault_kind, int>> seen; // level -> kind -> count
  for (int level = 0; level <= 2; ++level)
    for (std::uint64_t seed = 1; seed <= 100; ++seed)
      for (auto& f : draw_plan(seed, run_ms, true, level))
        ++seen[level][f.kind];
  EXPECT_EQ(seen[0].count(fault_kind::nats_loss), 0u);
  EXPECT_EQ(seen[0].count(fault_kind::nats_crash), 0u);
  EXPECT_GT(seen[1][fault_kind::nats_loss], 0);
  EXPECT_EQ(seen[1].count(fault_kind::nats_crash), 0u);
  EXPECT_GT(seen[2][fault_kind::nats_crash], 0);
  for (int level = 0; level <= 2; ++level) // every other kind at every level
    for (auto k : {fault_kind::kill_two, fault_kind::zombie,
                   fault_kind::kill_after_effect, fault_kind::cut_both,
                   fault_kind::clock_jump, fault_kind::slow_nats,
                   fault_kind::pg_outage, fault_kind::leader_move})
      EXPECT_GT(seen[level][k], 0) << name_of(k) << " at level " << level;
}

TEST(FaultPlan, NoClockJumpWithoutAFakeClock) {
  for (std::uint64_t seed = 1; seed <= 50; ++seed)
    for (auto& f : draw_plan(seed, run_ms, false, 1))
      EXPECT_NE(f.kind, fault_kind::clock_jump) << seed;
}

TEST(FaultPlan, ANodeOrAServerHasOneFaultAtATime) {
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    auto plan = draw_plan(seed, run_ms, true, 2);
    for (std::size_t i = 0; i < plan.size(); ++i)
      for (std::size_t j = i + 1; j < plan.size(); ++j) {
        auto &a = plan[i], &b = plan[j];
        if (!overlap(span(a), span(b)))
          continue;
        // Every node's side effects may be killed at once, and the jumping
        // clock is n3's whatever else hits it.
        auto shared = [](fault_kind k) {
          return k == fault_kind::kill_after_effect ||
                 k == fault_kind::clock_jump;
        };
        for (int n = 0; n < node_count && !shared(a.kind) && !shared(b.kind);
             ++n) {
          EXPECT_FALSE(hits_node(a, n) && hits_node(b, n))
              << "seed " << seed << ": " << describe(a) << " / " << describe(b);
        }
        EXPECT_FALSE(is_nats_fault(a.kind) && is_nats_fault(b.kind))
            << "seed " << seed << ": " << describe(a) << " / " << describe(b);
        EXPECT_FALSE(is_pg_fault(a.kind) && is_pg_fault(b.kind))
            << "seed " << seed << ": " << describe(a) << " / " << describe(b);
      }
  }
}

TEST(FaultPlan, ASlowLinkHasARateAndANode) {
  int slow = 0;
  for (std::uint64_t seed = 1; seed <= 100; ++seed)
    for (auto& f : draw_plan(seed, run_ms, true, 1)) {
      if (f.kind != fault_kind::slow_nats) {
        EXPECT_EQ(f.kib_per_s, 0);
        continue;
      }
      ++slow;
      EXPECT_GE(f.kib_per_s, 1);
      EXPECT_LE(f.kib_per_s, 32);
      EXPECT_GE(f.a, 0);
      EXPECT_LT(f.a, node_count);
      EXPECT_NE(describe(f).find(" KiB/s"), std::string::npos);
    }
  EXPECT_GT(slow, 0);
}

// -- the proxy --

namespace {

/// A listening socket on a free loopback port.
struct listener {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = 0;
  listener() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd, 4);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { close(fd); }
};

int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? fd : -1;
}

/// Reads from `fd` into `into` until `until` or `want` bytes.
void read_until(int fd, std::string& into, std::size_t want,
                std::chrono::steady_clock::time_point until) {
  char buf[8192];
  while (into.size() < want && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    auto n = read(fd, buf, sizeof buf);
    if (n <= 0)
      return;
    into.append(buf, static_cast<std::size_t>(n));
  }
}

} // namespace

TEST(TcpProxy, AThrottledLinkMovesNoFasterThanItsRateAndLosesNothing) {
  listener server;
  tcp_proxy proxy{server.port};
  constexpr std::size_t rate = 16 << 10, total = 256 << 10;
  proxy.throttle(rate);
  auto throttled_at = std::chrono::steady_clock::now();
  int client = connect_to(proxy.port());
  ASSERT_GE(client, 0);
  int upstream = accept4(server.fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(upstream, 0);
  std::string sent(total, '\0');
  for (std::size_t i = 0; i < total; ++i)
    sent[i] = static_cast<char>('a' + i % 26);
  std::thread writer{[&] { // blocks while the slow link holds it back
    for (std::size_t off = 0; off < total;) {
      auto n = write(client, sent.data() + off, total - off);
      if (n <= 0)
        return;
      off += static_cast<std::size_t>(n);
    }
  }};
  std::string got;
  read_until(upstream, got, total, throttled_at + 1s);
  auto elapsed = std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - throttled_at)
                     .count();
  // The rate over the elapsed time, the tenth of a second it may save up,
  // and one 20 ms pass of slack: an upper bound however slow this machine.
  EXPECT_LE(got.size(), rate * (elapsed + 0.1 + 0.02)) << elapsed << " s";
  EXPECT_LT(got.size(), total);
  proxy.throttle(0);
  read_until(upstream, got, total, std::chrono::steady_clock::now() + 30s);
  writer.join();
  EXPECT_EQ(got.size(), total);
  EXPECT_TRUE(got == sent) << "bytes reordered or damaged by the proxy";
  close(client);
  close(upstream);
}

TEST(TcpProxy, APartitionHoldsBytesAndHealingMovesThemOn) {
  listener server;
  tcp_proxy proxy{server.port};
  int client = connect_to(proxy.port());
  ASSERT_GE(client, 0);
  int upstream = accept4(server.fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(upstream, 0);
  proxy.partition(true);
  std::this_thread::sleep_for(50ms); // a pass of the proxy already begun
  ASSERT_EQ(write(client, "held", 4), 4);
  std::string got;
  read_until(upstream, got, 4, std::chrono::steady_clock::now() + 300ms);
  EXPECT_EQ(got, "");
  proxy.partition(false);
  read_until(upstream, got, 4, std::chrono::steady_clock::now() + 30s);
  EXPECT_EQ(got, "held");
  close(client);
  close(upstream);
}

// -- the broker's part in a failed run --

TEST(BrokerDivergence, TheEarliestSignAcrossTheServersLogsIsNamed) {
  char tmpl[] = "/tmp/troupe-broker-signs-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto write = [&](int s, const std::string& text) {
    std::filesystem::create_directories(dir + "/nats-s" + std::to_string(s));
    std::ofstream{dir + "/nats-s" + std::to_string(s) + "/nats.log"} << text;
  };
  EXPECT_EQ(broker_divergence(dir), "") << "no logs, no sign";
  write(1, "[11] 2026/12/04 20:42:02.253112 [ERR] Error trying to connect to "
           "route (attempt 1)\n"
           "[11] 2026/12/04 20:42:57.727795 [WRN] RAFT [k2] Request from "
           "follower for index [344] possibly beyond our last index [824]\n");
  write(2, "[12] 2026/12/04 20:42:56.853786 [WRN] Error applying entries to "
           "'$G > TROUPE_JOBS': stream store EOF\n"
           "[12] 2026/12/04 20:42:57.074871 [WRN] Resetting stream cluster "
           "state for '$G > TROUPE_JOBS'\n");
  write(3, "[13] 2026/12/04 20:40:00.000000 [INF] Server is ready\n");
  EXPECT_EQ(broker_divergence(dir),
            "s2 2026/12/04 20:42:56.853786 [WRN] Error applying entries to "
            "'$G > TROUPE_JOBS': stream store EOF");
  write(3, "[13] 2026/12/04 20:41:00.000000 [WRN] JetStream cluster consumer "
           "'$G > TROUPE_JOBS > troupe_fx' has NO quorum, stalled.\n");
  EXPECT_EQ(broker_divergence(dir).substr(0, 30),
            "s3 2026/12/04 20:41:00.000000 ");
  std::filesystem::remove_all(dir);
}

// -- side effects run again --

// A run that killed its own node before the checkpoint explains the next
// run whenever it comes (seed 19, session 19: 40 s later, behind a stalled
// stream): that run, named by key, node and time. A re-run with neither a
// kill nor a fault window before it is a violation.
TEST(Verdict, AStageThatKilledItsNodeExplainsItsNextRunWheneverItComes) {
  char tmpl[] = "/tmp/troupe-effects-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::ofstream{dir + "/effects"} << "fx-1-1:a 1 n1 1000\n"
                                     "fx-1-1:a 1 n3 90000\n"
                                     "fx-1-1:a 1 n2 95000\n"
                                     "fx-1-2:a 1 n2 1000\n"
                                     "fx-1-2:a 1 n2 90000\n";
  // fx-1-1's run on n1 at 1000 killed n1: its next run is explained; the
  // one after is not (fx-1-2 ran at 1000 on n2 too, and killed nothing).
  std::ofstream{dir + "/killed-by-77"} << "armed\nfx-1-1:a n1 1000\n";
  verdict_input in;
  in.dir = dir;
  in.effects_file = dir + "/effects";
  verdict v;
  judge_effects(in, v);
  EXPECT_EQ(v.effects, 5);
  EXPECT_EQ(v.reruns, 3);
  ASSERT_EQ(v.violations.size(), 2u);
  EXPECT_NE(v.violations[0].find("fx-1-1:a ran again at 95000"),
            std::string::npos);
  EXPECT_NE(v.violations[1].find("fx-1-2:a ran again at 90000"),
            std::string::npos);
  // A fault on n2 that ended within 20 s before explains fx-1-2's.
  in.faults.push_back({"leader_move n2", 500, 80000, 1, false});
  verdict w;
  judge_effects(in, w);
  EXPECT_EQ(w.violations.size(), 1u);
  // n3 killed 1.5 s after fx-1-1's run there (at 90000): that run was cut
  // short, so the next one is explained however late it comes; a kill of
  // n3 long after the run explains nothing.
  in.faults.push_back({"kill_two n3,n1", 91500, 93000, 2, false});
  verdict x;
  judge_effects(in, x);
  EXPECT_TRUE(x.violations.empty()) << x.violations.front();
  in.faults.back().from_ms = 200000;
  in.faults.back().to_ms = 201000;
  verdict y;
  judge_effects(in, y);
  EXPECT_EQ(y.violations.size(), 1u);
  std::filesystem::remove_all(dir);
}
