// A stage's successful attempt is stored once, in its checkpoint (schema
// migration 15, runtime/pg/attempt_fold.hpp). These tests write through a
// real store into a real PostgreSQL and read the history the way the shell,
// the HTTP API, dead letters and operators' scripts do: from job_attempts.
// The history must read as it did when every attempt was a row of its own.
#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <cstring>
#include <optional>
#include <tuple>

#include <caf/all.hpp>

#include "messages/errc.hpp"
#include "runtime/pg/admin_store.hpp"
#include "runtime/pg/attempt_fold.hpp"
#include "runtime/pg/migrations.hpp"
#include "runtime/pg/pg_store.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

attempt_record attempt(std::int32_t stage, std::int32_t n, bool ok,
                       std::int32_t life = 1) {
  attempt_record a;
  a.stage_index = stage;
  a.stage = "s" + std::to_string(stage);
  a.attempt = n;
  a.life = life;
  a.started_at_ms = 1'700'000'000'000 + stage * 1000 + n;
  a.duration_ms = 7;
  a.node = "n1";
  a.ok = ok;
  if (!ok) {
    a.error_code = "exit_code";
    a.error_message = "exit 1";
  }
  return a;
}

checkpoint checkpoint_of(const attempt_record& a) {
  checkpoint cp;
  cp.stage_index = a.stage_index;
  cp.stage = a.stage;
  cp.output = "{\"n\":" + std::to_string(a.attempt) + "}";
  cp.attempts = a.attempt;
  cp.duration_ms = a.duration_ms;
  cp.finished_at_ms = a.started_at_ms + a.duration_ms;
  return cp;
}

class AttemptHistory : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(apply_migrations(servers.pg_url()));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys.emplace(cfg);
    pg_store_options opts;
    opts.pg.url = servers.pg_url();
    opts.lease_owner = "n1#0000aaaa";
    store = spawn_pg_store(*sys, opts);
  }

  void TearDown() override {
    caf::anon_send_exit(store, caf::exit_reason::user_shutdown);
  }

  std::int64_t count(const std::string& sql) {
    return count_rows(servers.pg_url(), sql);
  }

  /// Sends `w` (epoch 1, pipeline p) to the store; true once committed.
  bool write(job_write w) {
    w.pipeline = "p";
    w.epoch = 1;
    if (w.create) {
      w.spec.job_id = w.job_id;
      w.spec.pipeline = "p";
    }
    bool ok = false;
    caf::scoped_actor self{*sys};
    self->request(store, std::chrono::seconds{30}, std::move(w))
        .receive([&](ok_atom) { ok = true; },
                 [&](caf::error& err) { ADD_FAILURE() << describe(err); });
    return ok;
  }

  /// A running job of pipeline p at epoch 1, as a claim leaves it.
  void running(const std::string& id) {
    count("with x as (insert into jobs (job_id, pipeline, state, epoch, "
          "lease_owner) values ('" +
          id +
          "', 'p', 'running', 1, 'n1#0000aaaa') returning 1) "
          "select count(*) from x");
  }

  job_write success(const std::string& id, const attempt_record& a) {
    job_write w;
    w.job_id = id;
    w.state = job_state::running;
    w.stage_index = a.stage_index + 1;
    w.checkpoints.push_back(checkpoint_of(a));
    w.attempts.push_back(a);
    return w;
  }

  std::int64_t history(const std::string& id, const std::string& where = "") {
    return count("select count(*) from job_attempts where job_id = '" + id +
                 "'" + where);
  }

  std::int64_t own_rows(const std::string& id) {
    return count("select count(*) from stage_attempts where job_id = '" + id +
                 "'");
  }

  test_servers servers;
  caf::actor_system_config cfg;
  std::optional<caf::actor_system> sys;
  store_actor store;
};

} // namespace

TEST(AttemptFold, ACheckpointHoldsOnlyTheAttemptItCanStateExactly) {
  job_write w;
  auto ok = attempt(0, 2, true);
  w.attempts = {attempt(0, 1, false), ok};
  w.checkpoints = {checkpoint_of(ok)};
  EXPECT_EQ(folded_attempt(w, w.checkpoints[0]), &w.attempts[1]);
  EXPECT_FALSE(is_folded(w, w.attempts[0]));
  EXPECT_TRUE(is_folded(w, w.attempts[1]));
  // A checkpoint whose duration or attempt differs holds nothing.
  w.checkpoints[0].duration_ms = 8;
  EXPECT_EQ(folded_attempt(w, w.checkpoints[0]), nullptr);
  w.checkpoints[0] = checkpoint_of(ok);
  w.checkpoints[0].attempts = 3;
  EXPECT_EQ(folded_attempt(w, w.checkpoints[0]), nullptr);
  EXPECT_FALSE(is_folded(w, w.attempts[1]));
  // A spawning stage's ok attempt with no checkpoint stays a row.
  w.checkpoints.clear();
  EXPECT_FALSE(is_folded(w, w.attempts[1]));
}

TEST_F(AttemptHistory, AFirstAttemptThatSucceedsIsStoredOnceAndReadAsBefore) {
  running("fold-1");
  for (int s = 0; s < 3; ++s)
    ASSERT_TRUE(write(success("fold-1", attempt(s, 1, true))));
  EXPECT_EQ(own_rows("fold-1"), 0);
  EXPECT_EQ(history("fold-1"), 3);
  EXPECT_EQ(history("fold-1", " and ok and life = 1 and attempt = 1 and "
                              "node = 'n1' and duration_ms = 7 and "
                              "error_code is null and started_at = "
                              "to_timestamp(1700000000001 / 1000.0)"),
            1);
  admin_store admin{servers.pg_url()};
  auto job = admin.get_job("fold-1", true);
  ASSERT_EQ(job["stages"].size(), 3u) << job.dump();
  EXPECT_EQ(job["stages"][2]["attempts"].size(), 1u) << job.dump();
  EXPECT_EQ(job["stages"][2]["attempts"][0]["ok"], true) << job.dump();
}

TEST_F(AttemptHistory, FailuresKeepTheirRowsBesideTheFoldedSuccess) {
  running("fold-2");
  job_write failed;
  failed.job_id = "fold-2";
  failed.state = job_state::retrying;
  failed.attempts.push_back(attempt(0, 1, false));
  ASSERT_TRUE(write(failed));
  ASSERT_TRUE(write(success("fold-2", attempt(0, 2, true))));
  EXPECT_EQ(own_rows("fold-2"), 1);
  EXPECT_EQ(history("fold-2"), 2);
  EXPECT_EQ(history("fold-2", " and not ok and error_code = 'exit_code'"), 1);
}

TEST_F(AttemptHistory, ACreatedJobsCopiedRowsFoldToo) {
  // A job that ran before its claim (speculation) is created with its rows.
  job_write w = success("fold-3", attempt(0, 2, true));
  w.create = true;
  w.state = job_state::succeeded;
  w.attempts.insert(w.attempts.begin(), attempt(0, 1, false));
  ASSERT_TRUE(write(w));
  EXPECT_EQ(own_rows("fold-3"), 1);
  EXPECT_EQ(history("fold-3"), 2);
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id = "
                  "'fold-3' and life = 1 and node = 'n1'"),
            1);
}

// A stage that succeeded twice (two runs of the same life) must stay
// visible: the checkpoint written again moves the attempt it held.
TEST_F(AttemptHistory, ASecondSuccessOfAStageDoesNotHideTheFirst) {
  running("fold-4");
  ASSERT_TRUE(write(success("fold-4", attempt(0, 1, true))));
  ASSERT_TRUE(write(success("fold-4", attempt(0, 2, true))));
  EXPECT_EQ(history("fold-4", " and ok and stage_index = 0"), 2);
  // The same write sent again (an ambiguous commit) adds nothing.
  ASSERT_TRUE(write(success("fold-4", attempt(0, 2, true))));
  EXPECT_EQ(history("fold-4"), 2);
}

TEST_F(AttemptHistory, AReplayKeepsTheEarlierLifesHistory) {
  running("fold-5");
  for (int s = 0; s < 2; ++s)
    ASSERT_TRUE(write(success("fold-5", attempt(s, 1, true))));
  count("with x as (update jobs set state = 'succeeded' where job_id = "
        "'fold-5' returning 1) select count(*) from x");
  admin_store admin{servers.pg_url()};
  auto t = admin.start_new_life("fold-5", 0, {"succeeded"}, "test");
  EXPECT_EQ(t.life, 2);
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id = "
                  "'fold-5'"),
            0);
  EXPECT_EQ(history("fold-5", " and life = 1 and ok"), 2);
}

TEST_F(AttemptHistory, ADeadLetterCarriesTheFoldedSuccesses) {
  running("fold-6");
  ASSERT_TRUE(write(success("fold-6", attempt(0, 1, true))));
  job_write dead;
  dead.job_id = "fold-6";
  dead.state = job_state::dead_lettered;
  dead.stage_index = 1;
  dead.last_error = "exit_code: exit 1";
  dead.attempts.push_back(attempt(1, 1, false));
  ASSERT_TRUE(write(dead));
  EXPECT_EQ(count("select jsonb_array_length(attempts) from dead_letters "
                  "where job_id = 'fold-6'"),
            2);
}

// Schema 16 dropped the child tables' foreign keys (their check cost a sixth
// of PostgreSQL's time per job); a deleted job must still take its rows
// with it, whoever deletes it (retention, purge, an operator), and only its
// own: delete_job_rows must look them up by job, not empty the tables.
TEST_F(AttemptHistory, ADeletedJobTakesItsCheckpointsAndAttemptsAlong) {
  for (std::string id : {"gone-1", "gone-2", "kept-1"}) {
    job_write w = success(id, attempt(0, 2, true));
    w.create = true;
    w.state = job_state::succeeded;
    w.attempts.insert(w.attempts.begin(), attempt(0, 1, false));
    ASSERT_TRUE(write(w));
  }
  ASSERT_EQ(history("gone-1"), 2);
  count("with x as (delete from jobs where job_id like 'gone-%' returning 1) "
        "select count(*) from x");
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id like "
                  "'gone-%'"),
            0);
  EXPECT_EQ(count("select count(*) from stage_attempts where job_id like "
                  "'gone-%'"),
            0);
  EXPECT_EQ(history("kept-1"), 2);
  EXPECT_EQ(own_rows("kept-1"), 1);
}

// A rolling upgrade: nodes of earlier versions keep running while the first
// upgraded node migrates, and docs/security.md's node role was granted its
// rights on the tables of the older schema. Both must go on working: the
// old nodes write attempts to job_attempts (INSERT and COPY), the role
// reads the history through the view.
TEST(AttemptHistoryUpgrade, OlderNodesAndTheirRoleKeepWorkingAfterMigration15) {
  test_servers servers;
  auto v14 = apply_migrations(servers.pg_url(), 14);
  ASSERT_TRUE(v14 && *v14 == 14);
  {
    pqxx::connection c{servers.pg_url()};
    pqxx::work w{c};
    w.exec("do $$ begin create role troupe_old_node login password 'pw-15'; "
           "exception when duplicate_object then null; end $$");
    w.exec("grant select, insert, update, delete on all tables in schema "
           "public to troupe_old_node");
    w.exec("grant usage, select on all sequences in schema public to "
           "troupe_old_node");
    w.commit();
  }
  auto v15 = apply_migrations(servers.pg_url());
  ASSERT_TRUE(v15 && *v15 == latest_schema_version);
  auto url = servers.pg_url();
  auto at = url.find("postgres@");
  ASSERT_NE(at, std::string::npos) << url;
  url.replace(at, std::strlen("postgres@"), "troupe_old_node:pw-15@");
  pqxx::connection c{url};
  {
    pqxx::work w{c};
    w.exec("insert into jobs (job_id, pipeline, state) values ('old-1', 'p', "
           "'running')");
    // What a node before version 15 ran (pg_store_sql.hpp then).
    w.exec("insert into job_attempts (job_id, life, stage_index, attempt, "
           "stage, node, ok, error_code, error_message, started_at, "
           "duration_ms) values ('old-1', 1, 0, 1, 's0', 'n0', false, 'x', "
           "'y', now(), 3) on conflict do nothing");
    pqxx::stream_to out{
        w, "job_attempts",
        std::vector<std::string>{"job_id", "life", "stage_index", "attempt",
                                 "stage", "node", "ok", "error_code",
                                 "error_message", "started_at", "duration_ms"}};
    out << std::make_tuple(
        "old-1", 1, 0, 2, "s0", "n0", true, std::optional<std::string>{},
        std::optional<std::string>{}, "2026-12-05 05:00:00+00", 4);
    out.complete();
    w.commit();
  }
  pqxx::nontransaction t{c};
  EXPECT_EQ(t.exec1("select count(*) from job_attempts where job_id = "
                    "'old-1'")[0]
                .as<int>(),
            2);
  EXPECT_EQ(count_rows(servers.pg_url(), "select count(*) from stage_attempts "
                                         "where job_id = 'old-1' and ok"),
            1);
}
