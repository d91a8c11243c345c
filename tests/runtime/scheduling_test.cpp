// Time in the store (docs/scheduling.md), judged by PostgreSQL and the
// stream: delayed jobs wait as rows, not messages; the SQL enqueue is
// transactional; long retry waits outlive every node; a killed node's jobs
// are rescued when its leases expire, long before ack_wait.
#include <csignal>
#include <ctime>
#include <iomanip>
#include <memory>
#include <sstream>
#include <thread>
#include <unistd.h>

#define PQXX_HAVE_OPTIONAL
#include <cstring>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "messages/errc.hpp"
#include "runtime/nats/nats_client.hpp"
#include "scheduling_fixture.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

TEST_F(scheduling_test, ADelayedJobWaitsAsARowNotAMessageThenRunsOnTime) {
  auto node = start_node("delay-1");
  auto nats = client();
  auto published = std::chrono::system_clock::now();
  // A direct publish with a header, and one with a body field.
  ASSERT_TRUE(nats->js_publish_headers("troupe.jobs.quick",
                                       R"({"payload":{"n":1}})", "delayed-h",
                                       {{"Troupe-Delay", "3000"}}));
  ASSERT_TRUE(nats->js_publish("troupe.jobs.quick",
                               R"({"payload":{"n":2},"delay_ms":3000})",
                               "delayed-b"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'delayed-%' "
                 "and state = 'scheduled' and run_at is not null") == 2;
  }));
  // Acked: nothing waits in the stream or on the node.
  EXPECT_TRUE(eventually([&] { return unacked(*nats, "quick") == 0; }, 10s));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'delayed-%' "
                 "and state = 'succeeded'") == 2;
  }));
  // Not before their time: each attempt started at least 3 s after its
  // publication (the same clock: both servers run here).
  auto sent_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     published.time_since_epoch())
                     .count();
  EXPECT_EQ(count("select count(*) from job_attempts where job_id like "
                  "'delayed-%' and extract(epoch from started_at) * 1000 >= " +
                  std::to_string(sent_ms + 3000 - 50)),
            2);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id like "
                  "'delayed-%'"),
            2);
}

TEST_F(scheduling_test, EnqueueInsideATransactionExistsOnlyIfItCommits) {
  auto node = start_node("enqueue-1");
  {
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    for (int i = 0; i < 3; ++i)
      w.exec("select troupe.enqueue('quick', '{\"rolled\":true}', "
             "'rolled-" +
             std::to_string(i) + "')");
    w.abort();
  }
  std::vector<std::string> ids;
  {
    pqxx::connection c{servers_->pg_url()};
    pqxx::work w{c};
    w.exec("create table if not exists orders(id int primary key)");
    w.exec("insert into orders values (1)");
    for (int i = 0; i < 3; ++i)
      ids.push_back(
          w.exec1("select troupe.enqueue('quick', '{\"order\":1}')")[0]
              .as<std::string>());
    // The same key twice is one job.
    auto a = w.exec1("select troupe.enqueue('quick', '{}', 'order-1-mail')");
    auto b = w.exec1("select troupe.enqueue('quick', '{}', 'order-1-mail')");
    EXPECT_EQ(a[0].as<std::string>(), b[0].as<std::string>());
    ids.push_back(a[0].as<std::string>());
    w.commit();
  }
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where payload = "
                 "'{\"order\":1}'::jsonb and state = 'succeeded'") == 3;
  }));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'order-1-mail' "
                 "and state = 'succeeded'") == 1;
  }));
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'rolled-%'"), 0);
  // Each ran once.
  for (auto& id : ids)
    EXPECT_EQ(
        count("select count(*) from job_attempts where job_id = '" + id + "'"),
        1)
        << id;
  // Bad input is refused with a message that says what.
  pqxx::connection c{servers_->pg_url()};
  pqxx::work w{c};
  try {
    w.exec("select troupe.enqueue('no such pipeline!', '{}')");
    ADD_FAILURE() << "a malformed pipeline name was enqueued";
  } catch (const pqxx::sql_error& e) {
    EXPECT_NE(std::string{e.what()}.find("not a pipeline name"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(scheduling_test, AJobDueNowStartsAtOnceBehindManyScheduledLater) {
  auto node = start_node("many-1");
  const int n = full() ? 20000 : 5000;
  const auto all = std::to_string(n);
  exec("select troupe.enqueue('quick', '{}', 'later-' || i, "
       "now() + interval '1 hour') from generate_series(1, " +
       all + ") i");
  exec("select troupe.enqueue('quick', '{}', 'due-now')");
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'due-now' and "
                 "state = 'succeeded'") == 1;
  }));
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'later-%' and "
                  "state = 'scheduled'"),
            n);
  // Operators see them on /metrics (counted every 10 s).
  auto log = node->output();
  auto at = log.find("http on 127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  httplib::Client http{
      "127.0.0.1", std::atoi(log.c_str() + at + strlen("http on 127.0.0.1:"))};
  EXPECT_TRUE(eventually(
      [&] {
        auto r = http.Get("/metrics");
        return r &&
               r->body.find("troupe_jobs_waiting_in_store{when=\"later\"} " +
                            all) != std::string::npos;
      },
      30s, 500ms));
  // Their hour comes (a short horizon here): every one runs, once.
  exec("update jobs set run_at = now() + interval '1 second' where job_id "
       "like 'later-%'");
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id like 'later-%' "
                     "and state = 'succeeded'") == n;
      },
      120s, 200ms));
  EXPECT_EQ(count("select count(*) from job_attempts where job_id like "
                  "'later-%'"),
            n);
}

TEST_F(scheduling_test, ALongBackoffOutlivesEveryNodeAndIsNotCutShort) {
  // 6 s here, 60 s with TROUPE_FULL.
  const std::string subject =
      full() ? "troupe.jobs.backoff-long" : "troupe.jobs.backoff";
  const int wait_ms = full() ? 59950 : 5950;
  const auto patience = full() ? 180s : 60s;
  auto node = start_node("backoff-1");
  auto nats = client();
  ASSERT_TRUE(nats->js_publish(subject, R"({"payload":{}})", "waits-6s"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'waits-6s' and "
                 "state = 'retrying' and run_at is not null") == 1;
  }));
  EXPECT_TRUE(eventually(
      [&] { return unacked(*nats, full() ? "backoff-long" : "backoff") == 0; },
      10s));
  // Every node dies; a new one comes.
  node->signal(SIGKILL);
  node->wait(10s);
  node = start_node("backoff-2");
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id = 'waits-6s' and "
                     "state = 'succeeded'") == 1;
      },
      patience));
  // The second attempt began no sooner than the backoff after the first
  // ended.
  EXPECT_TRUE(waited("waits-6s", wait_ms));
  // The same across a drain.
  ASSERT_TRUE(nats->js_publish(subject, R"({"payload":{}})", "waits-drain"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'waits-drain' "
                 "and state = 'retrying' and run_at is not null") == 1;
  }));
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0) << node->output();
  node = start_node("backoff-3");
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id = 'waits-drain' "
                     "and state = 'succeeded'") == 1;
      },
      patience));
  EXPECT_TRUE(waited("waits-drain", wait_ms));
}

TEST_F(scheduling_test, AKilledNodesJobsAreRescuedLongBeforeAckWait) {
  auto a = start_node("rescue-a");
  auto nats = client();
  const int jobs = 200;
  for (int i = 0; i < jobs; ++i)
    ASSERT_TRUE(nats->js_publish("troupe.jobs.slow", R"({"payload":{}})",
                                 "rescue-" + std::to_string(i)));
  // All running on a, in their first stage.
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'rescue-%' and "
                 "state = 'running' and lease_owner like 'rescue-a#%'") == jobs;
  }));
  auto b = start_node("rescue-b");
  auto c = start_node("rescue-c");
  auto killed = std::chrono::steady_clock::now();
  a->signal(SIGKILL);
  a->wait(10s);
  // ack_wait is 60 s: only the lease (failure_timeout 2 s) can bring them
  // back this soon.
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id like 'rescue-%' "
                     "and state = 'succeeded'") == jobs;
      },
      40s, 100ms));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  std::cout << "[ info ] " << jobs << " jobs rescued and finished "
            << took.count() << " ms after the kill\n";
  // No stage completed twice, and the live nodes ran every second stage.
  EXPECT_EQ(count("select count(*) from (select job_id, stage_index from "
                  "job_attempts where job_id like 'rescue-%' and ok group by "
                  "1, 2 having count(*) > 1) d"),
            0);
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id like "
                  "'rescue-%'"),
            2 * jobs);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id like "
                  "'rescue-%' and stage_index = 1 and node in ('rescue-b', "
                  "'rescue-c') and ok"),
            jobs);
}

TEST_F(scheduling_test, AKeySubmittedAgainLongAfterTheWindowIsTheSameJob) {
  auto node = start_node("unique-1");
  auto nats = client();
  auto submit = [&](const std::string& pipeline) {
    auto r = nats->request("troupe.api.v1.submit",
                           nlohmann::json{{"pipeline", pipeline},
                                          {"key", "uniq-1"},
                                          {"payload", {{"n", 1}}}}
                               .dump(),
                           5000);
    EXPECT_TRUE(r) << describe(r.error());
    return r ? nlohmann::json::parse(*r) : nlohmann::json{};
  };
  auto first = submit("backoff");
  ASSERT_EQ(first.value("job_id", ""), "uniq-1") << first.dump();
  EXPECT_FALSE(first.contains("duplicate"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'uniq-1' and "
                 "state = 'retrying' and run_at is not null") == 1;
  }));
  // Far past the stream's duplicate window (1 s here), the job waiting in
  // the store: the same id comes back, and nothing new is published.
  std::this_thread::sleep_for(std::chrono::milliseconds{2500});
  auto again = submit("backoff");
  EXPECT_EQ(again.value("job_id", ""), "uniq-1") << again.dump();
  EXPECT_TRUE(again.value("duplicate", false)) << again.dump();
  auto elsewhere = submit("quick");
  EXPECT_FALSE(elsewhere.value("ok", true)) << elsewhere.dump();
  EXPECT_EQ(elsewhere["error"].value("code", ""), "conflict");
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'uniq-1' and "
                 "state = 'succeeded'") == 1;
  }));
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'uniq-1'"),
            2); // the failure and its retry, nothing more
}

TEST_F(scheduling_test, ANatsOutageLongerThanAckWaitThenARestartOfEveryNode) {
  auto node = start_node("outage-1", "fast-ack.toml");
  auto nats = client();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(nats->js_publish("troupe.jobs.backoff", R"({"payload":{}})",
                                 "out-wait-" + std::to_string(i)));
    ASSERT_TRUE(nats->js_publish("troupe.jobs.slow", R"({"payload":{}})",
                                 "out-run-" + std::to_string(i)));
  }
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'out-wait-%' "
                 "and run_at is not null") == 20 &&
           count("select count(*) from jobs where job_id like 'out-run-%' "
                 "and state = 'running'") == 20;
  }));
  nats.reset();
  // JetStream is gone for longer than ack_wait (3 s); the stream stays on
  // disk. Then every node is killed and one comes back.
  servers_->nats().stop();
  std::this_thread::sleep_for(5s);
  ASSERT_FALSE(servers_->nats().start(servers_->dir(), servers_->nats_port()));
  node->signal(SIGKILL);
  node->wait(10s);
  node = start_node("outage-2", "fast-ack.toml");
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id like 'out-%' "
                     "and state = 'succeeded'") == 40;
      },
      120s, 200ms));
  EXPECT_EQ(count("select count(*) from (select job_id, stage_index from "
                  "job_attempts where job_id like 'out-%' and ok group by "
                  "1, 2 having count(*) > 1) d"),
            0);
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id like "
                  "'out-run-%'"),
            40);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'out-%' and "
                  "run_at is not null"),
            0);
}

// Hole 3 of issue 14 through real servers: the node stalls for longer than
// ack_wait (a VM pause, a stopped process) while it runs jobs, JetStream
// redelivers their messages to it when it wakes, and it must not ack them
// as duplicates: on a work-queue stream that deletes the only message of
// an unfinished job. (A whole-server outage does not show it: the node's
// in-progress acks reach the restarted server before its redelivery.)
TEST_F(scheduling_test, AMessageRedeliveredToItsHolderStaysUntilItsJobEnds) {
  auto node = start_node("redeliver", "fast-ack.toml");
  auto nats = client();
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(nats->js_publish("troupe.jobs.long", R"({"payload":{}})",
                                 "redo-" + std::to_string(i)));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id like 'redo-%' "
                 "and state = 'running'") == 10;
  }));
  node->signal(SIGSTOP);
  std::this_thread::sleep_for(4500ms); // ack_wait is 3 s
  node->signal(SIGCONT);
  ASSERT_TRUE(
      eventually([&] { return deliveries(*nats, "long") > 10; }, 20s, 100ms))
      << node->output();
  std::this_thread::sleep_for(1s); // time for a wrong ack to land
  // Still mid-stage (15 s): every job's message is still on the stream.
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'redo-%' "
                  "and state = 'running'"),
            10);
  EXPECT_EQ(unacked(*nats, "long"), 10);
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from jobs where job_id like 'redo-%' "
                     "and state = 'succeeded'") == 10;
      },
      60s, 200ms));
  EXPECT_TRUE(eventually([&] { return unacked(*nats, "long") == 0; }));
  EXPECT_EQ(count("select count(*) from job_attempts where job_id like "
                  "'redo-%'"),
            10);
  EXPECT_TRUE(node->running());
}

TEST_F(scheduling_test, AJobTheSchedulerPublishedCanBeReplayed) {
  auto node = start_node("replay-1");
  exec("select troupe.enqueue('doomed', '{}', 'sql-doomed')");
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'sql-doomed' and "
                 "state = 'dead_lettered' and gen = 1") == 1;
  }));
  // The scheduler noted where its message went (the stranded sweeper looks
  // for a queued job's message there).
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'sql-doomed' and "
                  "stream_seq > 0"),
            1);
  // A replay's message names its life, not a generation: it is not stale.
  auto nats = client();
  auto r = nats->request("troupe.admin.any.control.replay",
                         R"({"job_id":"sql-doomed"})", 10000);
  ASSERT_TRUE(r) << describe(r.error());
  ASSERT_TRUE(nlohmann::json::parse(*r).value("ok", false)) << *r;
  EXPECT_TRUE(eventually([&] {
    return count("select count(*) from job_attempts where job_id = "
                 "'sql-doomed' and life = 2") == 1;
  }));
}

// Chaos seed 2: a node whose wall clock had jumped +382 s wrote a 12 s
// backoff as an absolute time by its clock, and the job waited 6.5 minutes.
// A wait is now PostgreSQL's now() plus the delay.
TEST_F(scheduling_test, AWaitIsCountedOnPostgresClockNotTheNodes) {
  const char* faketime =
      "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  if (access(faketime, R_OK) != 0)
    GTEST_SKIP() << "libfaketime is not installed (scripts/bootstrap.sh)";
  auto node = start_node("skewed", "node.toml",
                         {std::string{"LD_PRELOAD="} + faketime,
                          "FAKETIME=+3600", "DONT_FAKE_MONOTONIC=1"},
                         TROUPE_GLIBC_BINARY);
  // The node's clock is an hour ahead (its log says so), else this test
  // proves nothing.
  std::tm tm{};
  std::istringstream first_line{node->output()};
  first_line >> std::get_time(&tm, "%Y-%m-%d %H:%M:%S");
  ASSERT_FALSE(first_line.fail()) << node->output();
  auto skew = timegm(&tm) - std::time(nullptr);
  ASSERT_GT(skew, 3000) << "libfaketime did not move the node's clock";
  auto nats = client();
  ASSERT_TRUE(nats->js_publish("troupe.jobs.backoff-long", R"({"payload":{}})",
                               "skewed-wait"));
  ASSERT_TRUE(eventually([&] {
    return count("select count(*) from jobs where job_id = 'skewed-wait' "
                 "and state = 'retrying' and run_at is not null") == 1;
  })) << node->output();
  // 60 s from now by PostgreSQL's clock, not an hour more.
  auto due_in = count("select extract(epoch from run_at - now())::bigint "
                      "from jobs where job_id = 'skewed-wait'");
  EXPECT_GT(due_in, 30);
  EXPECT_LE(due_in, 61);
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(30s), 0) << node->output();
}
