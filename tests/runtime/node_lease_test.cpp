// A node's lease (runtime/pg/schedule_store.hpp) against a real PostgreSQL:
// one row holds every job the node runs, and the jobs of a node whose row
// lapsed are rescued (due now, epoch + 1). Judged by the rows.
#include <atomic>
#include <optional>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <caf/all.hpp>

#include "messages/errc.hpp"
#include "runtime/node/job_scheduler.hpp"
#include "runtime/pg/migrations.hpp"
#include "runtime/pg/pg_store.hpp"
#include "runtime/pg/schedule_store.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

class NodeLease : public ::testing::Test {
protected:
  void SetUp() override { ASSERT_TRUE(apply_migrations(servers.pg_url())); }

  std::int64_t count(const std::string& sql) {
    return count_rows(servers.pg_url(), sql);
  }

  /// `n` running jobs `<prefix>-<i>` held by `owner` (lease_until null, as
  /// a node writes them) or under a lease of their own (`own_lease`, as a
  /// node before migration 14 wrote them).
  void hold(const std::string& prefix, int n, const std::string& owner,
            const std::string& own_lease = "null") {
    count("with x as (insert into jobs (job_id, pipeline, state, epoch, "
          "lease_owner, lease_until) select '" +
          prefix + "-' || i, 'p', 'running', 1, '" + owner + "', " + own_lease +
          " from generate_series(1, " + std::to_string(n) +
          ") i returning 1) select count(*) from x");
  }

  /// Rescues until nothing is left; returns how many.
  std::size_t rescue_all(schedule_store& s) {
    std::size_t total = 0;
    for (;;) {
      auto n = s.rescue_expired(256);
      EXPECT_TRUE(n) << describe(n.error());
      if (!n || *n == 0)
        return total;
      total += *n;
    }
  }

  std::int64_t rescued(const std::string& prefix) {
    return count("select count(*) from jobs where job_id like '" + prefix +
                 "-%' and run_at is not null and epoch = 2 and "
                 "lease_until is null");
  }

  test_servers servers;
};

} // namespace

TEST_F(NodeLease, OneRowHoldsEveryJobOfTheNodeAndNoJobRowIsWritten) {
  hold("busy", 1000, "n1#0000aaaa");
  auto versions = [&] {
    pqxx::connection c{servers.pg_url()};
    pqxx::nontransaction t{c};
    return t
        .exec1("select string_agg(xmin::text, ',' order by job_id) "
               "from jobs")[0]
        .as<std::string>();
  };
  auto before = versions();
  schedule_store n1{servers.pg_url(), "n1#0000aaaa"};
  for (int i = 0; i < 3; ++i)
    ASSERT_FALSE(n1.renew_lease(duration_ms{60000}));
  EXPECT_EQ(versions(), before); // no job row was written again
  EXPECT_EQ(count("select count(*) from node_leases where owner = "
                  "'n1#0000aaaa' and node = 'n1' and until > now() + "
                  "interval '50 seconds'"),
            1);
  schedule_store n2{servers.pg_url(), "n2#0000bbbb"};
  EXPECT_EQ(rescue_all(n2), 0u);
  EXPECT_EQ(count("select count(*) from jobs where run_at is null and "
                  "epoch = 1"),
            1000);
}

TEST_F(NodeLease, TheJobsOfANodeWhoseLeaseLapsedAreRescuedAndFenced) {
  hold("dead", 600, "n1#0000aaaa");
  hold("live", 300, "n2#0000bbbb");
  schedule_store n1{servers.pg_url(), "n1#0000aaaa"};
  schedule_store n2{servers.pg_url(), "n2#0000bbbb"};
  ASSERT_FALSE(n1.renew_lease(duration_ms{1}));
  ASSERT_FALSE(n2.renew_lease(duration_ms{60000}));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rescue_all(n2), 600u); // more than one batch of 256
  EXPECT_EQ(rescued("dead"), 600);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'live-%' and "
                  "run_at is null and epoch = 1"),
            300);
}

TEST_F(NodeLease, ARestartedNodeDoesNotKeepItsPredecessorsJobs) {
  hold("before", 20, "n1#0000aaaa");
  schedule_store old_run{servers.pg_url(), "n1#0000aaaa"};
  ASSERT_FALSE(old_run.renew_lease(duration_ms{1}));
  // The same node id, a new process: its lease is not its predecessor's.
  schedule_store new_run{servers.pg_url(), "n1#0000cccc"};
  hold("after", 5, "n1#0000cccc");
  ASSERT_FALSE(new_run.renew_lease(duration_ms{60000}));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rescue_all(new_run), 20u);
  EXPECT_EQ(rescued("before"), 20);
  EXPECT_EQ(rescued("after"), 0);
}

TEST_F(NodeLease, AReleasedLeaseIsRescuedAtOnce) {
  hold("left", 10, "n1#0000aaaa");
  schedule_store n1{servers.pg_url(), "n1#0000aaaa"};
  schedule_store n2{servers.pg_url(), "n2#0000bbbb"};
  ASSERT_FALSE(n1.renew_lease(duration_ms{3600000}));
  EXPECT_EQ(rescue_all(n2), 0u);
  ASSERT_FALSE(n1.release_lease());
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(rescue_all(n2), 10u);
}

// A row written by a node from before migration 14 carries a lease of its
// own, which that node keeps renewing: it goes only when that lapses.
TEST_F(NodeLease, AJobWithALeaseOfItsOwnGoesWhenThatLapses) {
  hold("own-live", 4, "n9", "now() + interval '1 hour'");
  hold("own-gone", 3, "n9", "now() - interval '1 second'");
  schedule_store n2{servers.pg_url(), "n2#0000bbbb"};
  EXPECT_EQ(rescue_all(n2), 3u);
  EXPECT_EQ(rescued("own-gone"), 3);
  EXPECT_EQ(rescued("own-live"), 0);
}

TEST_F(NodeLease, ALapsedLeaseIsForgottenOnlyOnceItHoldsNoJob) {
  count("with x as (insert into node_leases (owner, node, until) values "
        "('gone#1', 'gone', now() - interval '11 minutes'), "
        "('recent#1', 'recent', now() - interval '1 minute') returning 1) "
        "select count(*) from x");
  hold("parked", 2, "gone#1");
  count("with x as (update jobs set run_at = now() + interval '1 hour' "
        "where job_id like 'parked-%' returning 1) select count(*) from x");
  hold("held", 1, "gone#1");
  schedule_store n2{servers.pg_url(), "n2#0000bbbb"};
  // The first pass rescues the job it still held, then forgets it; a
  // lapsed lease younger than 10 minutes stays for the record.
  EXPECT_EQ(rescue_all(n2), 1u);
  EXPECT_EQ(count("select count(*) from node_leases where owner = 'gone#1'"),
            0);
  EXPECT_EQ(count("select count(*) from node_leases where owner = "
                  "'recent#1'"),
            1);
}

/// A real store whose node is `owner`, for one request.
struct store_as {
  store_as(const std::string& pg_url, const std::string& owner) {
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys.emplace(cfg);
    pg_store_options opts;
    opts.pg.url = pg_url;
    opts.lease_owner = owner;
    store = spawn_pg_store(*sys, opts);
  }
  ~store_as() { caf::anon_send_exit(store, caf::exit_reason::user_shutdown); }

  caf::actor_system_config cfg;
  std::optional<caf::actor_system> sys;
  store_actor store;
};

/// Claims `job_id` (a redelivery of message `seq` of pipeline p) through a
/// real store whose node is `owner`: the epoch it took, or the error.
caf::expected<std::int64_t> claim_as(const std::string& pg_url,
                                     const std::string& owner,
                                     const std::string& job_id,
                                     std::uint64_t seq) {
  store_as s{pg_url, owner};
  job_spec spec;
  spec.job_id = job_id;
  spec.pipeline = "p";
  spec.stream_seq = seq;
  caf::expected<std::int64_t> out = make_error(errc::internal, "no reply");
  caf::scoped_actor self{*s.sys};
  self->request(s.store, std::chrono::seconds{30}, claim_atom::value, spec)
      .receive([&](job_snapshot& snap) { out = snap.epoch; },
               [&](caf::error& err) { out = err; });
  return out;
}

/// Sends a release of `job_id` (job_write::release) through a real store
/// whose node is `owner`; true once the store answered.
bool release_as(const std::string& pg_url, const std::string& owner,
                const std::string& job_id) {
  store_as s{pg_url, owner};
  job_write w;
  w.job_id = job_id;
  w.pipeline = "p";
  w.release = true;
  bool ok = false;
  caf::scoped_actor self{*s.sys};
  self->request(s.store, std::chrono::seconds{30}, std::move(w))
      .receive([&](ok_atom) { ok = true; }, [&](caf::error&) {});
  return ok;
}

// A node that gave a job up while its lease holds it (a claim whose reply
// was lost, a job actor that crashed too often; actors/pipeline_release.cpp)
// queues it again, so that the next delivery on another node takes it
// instead of waiting for that node's lease. Another node's release of it,
// or a release once a newer run holds it, changes nothing.
TEST_F(NodeLease, AJobItsNodeGaveUpIsTakenByTheNextDeliveryElsewhere) {
  schedule_store n1{servers.pg_url(), "n1#0000aaaa"};
  ASSERT_FALSE(n1.renew_lease(duration_ms{60000}));
  count("with x as (insert into jobs (job_id, pipeline, state, epoch, "
        "lease_owner, stream_seq) values ('given-7', 'p', 'running', 1, "
        "'n1#0000aaaa', 7) returning 1) select count(*) from x");
  ASSERT_TRUE(release_as(servers.pg_url(), "n2#0000bbbb", "given-7"));
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'given-7' and "
                  "state = 'running' and epoch = 1"),
            1);
  ASSERT_TRUE(release_as(servers.pg_url(), "n1#0000aaaa", "given-7"));
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'given-7' and "
                  "state = 'queued' and epoch = 2 and lease_owner is null"),
            1);
  auto taken = claim_as(servers.pg_url(), "n2#0000bbbb", "given-7", 7);
  ASSERT_TRUE(taken) << describe(taken.error());
  EXPECT_EQ(*taken, 3);
  // n1's late release (a second one) leaves n2's run alone.
  ASSERT_TRUE(release_as(servers.pg_url(), "n1#0000aaaa", "given-7"));
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'given-7' and "
                  "state = 'running' and epoch = 3 and lease_owner = "
                  "'n2#0000bbbb'"),
            1);
}

// A message delivered again while the node that runs its job is alive (an
// outage longer than ack_wait, a node cut from NATS only, a consumer made
// again by the sweeper) does not take the job from that node: PostgreSQL
// says who runs it. Once that node's lease lapses, the next delivery does.
TEST_F(NodeLease, ADeliveryDoesNotTakeAJobFromANodeWhoseLeaseLives) {
  schedule_store n1{servers.pg_url(), "n1#0000aaaa"};
  ASSERT_FALSE(n1.renew_lease(duration_ms{60000}));
  count("with x as (insert into jobs (job_id, pipeline, state, epoch, "
        "lease_owner, stream_seq) values ('held-9', 'p', 'running', 1, "
        "'n1#0000aaaa', 9) returning 1) select count(*) from x");
  auto refused = claim_as(servers.pg_url(), "n2#0000bbbb", "held-9", 9);
  ASSERT_FALSE(refused);
  EXPECT_EQ(code_of(refused.error()), errc::stale_epoch);
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'held-9' and "
                  "epoch = 1 and lease_owner = 'n1#0000aaaa'"),
            1);
  // Its own node may take it again (a delivery it replaces).
  auto own = claim_as(servers.pg_url(), "n1#0000aaaa", "held-9", 9);
  ASSERT_TRUE(own) << describe(own.error());
  EXPECT_EQ(*own, 2);
  // n1's lease lapses: the next delivery elsewhere takes the job.
  ASSERT_FALSE(n1.renew_lease(duration_ms{1}));
  std::this_thread::sleep_for(50ms);
  auto taken = claim_as(servers.pg_url(), "n2#0000bbbb", "held-9", 9);
  ASSERT_TRUE(taken) << describe(taken.error());
  EXPECT_EQ(*taken, 3);
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'held-9' and "
                  "lease_owner = 'n2#0000bbbb'"),
            1);
}

// Since a delivery no longer takes a job from a live lease, the lease must
// mean that the node's actors run: a process whose actors stopped ticking
// (its lease thread still alive) stops renewing, and its jobs are rescued.
TEST_F(NodeLease, ANodeWhoseActorsStalledLetsItsLeaseLapse) {
  auto nats = connect_client(servers.nats_url());
  ASSERT_TRUE(nats);
  auto alive = std::make_shared<std::atomic<bool>>(true);
  job_scheduler_options so;
  so.pg_url = servers.pg_url();
  so.node_id = "n1";
  so.lease_owner = "n1#0000cccc";
  so.lease = duration_ms{1000};
  so.actors_alive = [alive] { return alive->load(); };
  job_scheduler sched{nats, so};
  ASSERT_FALSE(sched.hold_lease());
  hold("stall", 3, "n1#0000cccc");
  sched.start();
  // Renewed while the actors tick: nothing is rescued.
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'stall-%' and "
                  "epoch = 1 and run_at is null"),
            3);
  alive->store(false);
  // The lease lapses within a lease (1 s); the next pass rescues the jobs.
  std::int64_t rescued_n = 0;
  for (int i = 0; i < 50 && rescued_n < 3; ++i) {
    std::this_thread::sleep_for(100ms);
    rescued_n = count("select count(*) from jobs where job_id like 'stall-%' "
                      "and epoch = 2");
  }
  EXPECT_EQ(rescued_n, 3);
  sched.stop();
}

TEST(NodeOfOwner, StripsTheIncarnationOnly) {
  EXPECT_EQ(node_of_owner("n1#0a1b2c3d"), "n1");
  EXPECT_EQ(node_of_owner("a#b#0a1b2c3d"), "a#b");
  EXPECT_EQ(node_of_owner("old-node"), "old-node");
  EXPECT_EQ(node_of_owner(""), "");
}
