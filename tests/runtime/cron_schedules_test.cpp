// Cron schedules (docs/scheduling.md), judged by the jobs in PostgreSQL:
// one job per slot across three nodes, catch-up after the whole cluster was
// down, and the shell's view and steering of schedules.
#include <csignal>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "scheduling_fixture.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

/// Slots (unix seconds) of schedule `name` that have a job, in order.
std::vector<std::int64_t> fired_slots(const std::string& pg_url,
                                      const std::string& name) {
  pqxx::connection c{pg_url};
  pqxx::nontransaction n{c};
  std::vector<std::int64_t> out;
  for (const auto& r : n.exec_params(
           "select split_part(job_id, '@', 2)::bigint from jobs where "
           "job_id like $1 || '@%' and job_id not like '%@manual-%' order by 1",
           name))
    out.push_back(r[0].as<std::int64_t>());
  return out;
}

/// Slots between the first and the last fired one that have no job.
int gaps(const std::vector<std::int64_t>& slots) {
  return slots.empty()
             ? 0
             : static_cast<int>(slots.back() - slots.front() + 1 -
                                static_cast<std::int64_t>(slots.size()));
}

} // namespace

TEST_F(scheduling_test, EverySecondAcrossThreeNodesIsOneJobPerSlotAndCatchUp) {
  std::vector<std::unique_ptr<child_process>> nodes;
  for (auto id : {"cron-a", "cron-b", "cron-c"})
    nodes.push_back(start_node(id, "cron.toml"));
  ASSERT_TRUE(eventually(
      [&] {
        return fired_slots(servers_->pg_url(), "tick-all").size() >=
               (full() ? 30u : 6u);
      },
      full() ? 90s : 60s));
  // The whole cluster goes away for 5 s; one node comes back.
  for (auto& n : nodes)
    n->signal(SIGKILL);
  for (auto& n : nodes)
    n->wait(10s);
  auto before = fired_slots(servers_->pg_url(), "tick-all").size();
  std::this_thread::sleep_for(5s);
  nodes.clear();
  nodes.push_back(start_node("cron-d", "cron.toml"));
  ASSERT_TRUE(eventually([&] {
    return fired_slots(servers_->pg_url(), "tick-none").size() >= before + 3;
  }));
  // Settle: every fired job has run.
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'tick-%' and "
                 "state <> 'succeeded'") == 0;
  }));
  auto all = fired_slots(servers_->pg_url(), "tick-all");
  auto last = fired_slots(servers_->pg_url(), "tick-last");
  auto none = fired_slots(servers_->pg_url(), "tick-none");
  std::cout << "[ info ] slots fired: all " << all.size() << ", last "
            << last.size() << ", none " << none.size() << "; gaps: all "
            << gaps(all) << ", last " << gaps(last) << ", none " << gaps(none)
            << "\n";
  // One job per slot, each run once; "all" missed nothing.
  EXPECT_EQ(count("select count(*) from (select job_id from job_attempts "
                  "where job_id like 'tick-%' group by 1 having count(*) > "
                  "1) d"),
            0);
  EXPECT_EQ(gaps(all), 0);
  // "none" fired no slot that was missed (3 s or more late when fired: the
  // job's created_at is the firing transaction's now()) ...
  auto late = [&](const std::string& name) {
    return count("select count(*) from jobs where job_id like '" + name +
                 "@%' and extract(epoch from created_at) - "
                 "split_part(job_id, '@', 2)::bigint >= 3");
  };
  EXPECT_EQ(late("tick-none"), 0);
  // ... "last" the newest missed one only, "all" every one.
  EXPECT_EQ(late("tick-last"), 1);
  EXPECT_GE(late("tick-all"), 2);
  EXPECT_EQ(gaps(last), gaps(none) - 1);
}

TEST_F(scheduling_test, TheShellListsPausesAndTriggersSchedules) {
  auto node = start_node("cron-shell", "cron.toml");
  auto shell = [&](const std::string& cmds) {
    child_process sh{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                      "--json", "-c", cmds},
                     servers_->dir() + "/shell.log"};
    auto rc = sh.wait(30s);
    std::vector<nlohmann::json> docs;
    std::istringstream lines{sh.output()};
    for (std::string line; std::getline(lines, line);)
      docs.push_back(nlohmann::json::parse(line, nullptr, false));
    EXPECT_EQ(rc, 0) << sh.output();
    return docs;
  };
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from schedules where next_at is not null") ==
           3;
  }));
  auto docs = shell("schedule pause tick-last; schedule trigger tick-last; "
                    "schedules");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].value("paused", false), true) << docs[0].dump();
  auto fired = docs[1].value("job_id", "");
  EXPECT_EQ(fired.rfind("tick-last@manual-", 0), 0u) << docs[1].dump();
  ASSERT_EQ(docs[2]["schedules"].size(), 3u) << docs[2].dump();
  EXPECT_EQ(docs[2]["schedules"][1]["name"], "tick-last");
  EXPECT_EQ(docs[2]["schedules"][1]["paused"], true);
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = '" + fired +
                 "' and state = 'succeeded'") == 1;
  }));
  // Paused: no slot fires; resumed: it fires again from its next slot.
  auto slots = fired_slots(servers_->pg_url(), "tick-last").size();
  std::this_thread::sleep_for(std::chrono::milliseconds{2500});
  EXPECT_EQ(fired_slots(servers_->pg_url(), "tick-last").size(), slots);
  shell("schedule resume tick-last");
  EXPECT_TRUE(eventually([&] {
    return fired_slots(servers_->pg_url(), "tick-last").size() > slots;
  }));
  child_process bad{{TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
                     "--json", "-c", "schedule trigger no-such"},
                    servers_->dir() + "/shell-bad.log"};
  EXPECT_EQ(bad.wait(30s), 1);
  EXPECT_NE(bad.output().find("unknown_schedule"), std::string::npos)
      << bad.output();
  // A careless client names an action that does not exist: refused.
  nats_connect_options o;
  o.urls = servers_->nats_url();
  auto nats = nats_client::connect(o);
  ASSERT_TRUE(nats);
  auto r = (*nats)->request("troupe.admin.any.control.schedule",
                            R"({"name":"tick-all","action":"explode"})", 10000);
  ASSERT_TRUE(r);
  EXPECT_NE(r->find("invalid_request"), std::string::npos) << *r;
  EXPECT_EQ(count("select count(*) from schedules where name = 'tick-all'"), 1);
}
