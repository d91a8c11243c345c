// The submit API's log against a PostgreSQL that goes away and comes back:
// what is accepted meanwhile is kept and written later (chaos seed 3,
// session 18: two jobs accepted during an outage had only the broker's
// copy, and the broker lost them).

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/cli/local_servers.hpp"
#include "runtime/pg/migrations.hpp"
#include "runtime/pg/submission_log.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

logged_submission submission(const std::string& id, std::size_t body_bytes,
                             std::uint64_t seq) {
  return {id, "p", "troupe.jobs.p", std::string(body_bytes, 'x'), seq};
}

/// A PostgreSQL of its own, migrated, that a test stops and starts again
/// on the same port with its data kept.
class SubmissionLogOnPostgres : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/troupe-sublog-XXXXXX";
    dir = mkdtemp(tmpl);
    port = free_port();
    ASSERT_FALSE(pg.start(dir, port));
    ASSERT_TRUE(apply_migrations(pg.url()));
  }
  void TearDown() override {
    pg.stop();
    std::filesystem::remove_all(dir);
  }

  std::string dir;
  int port = 0;
  local_postgres pg;
};

TEST_F(SubmissionLogOnPostgres,
       WhatIsAcceptedWhilePostgresIsAwayIsWrittenWhenItIsBack) {
  submission_log log{pg.url(), 2};
  ASSERT_FALSE(log.record(submission("before", 10, 1)));
  pg.stop();
  // Accepted while PostgreSQL is down: kept, not an error.
  EXPECT_FALSE(log.record(submission("during-1", 10, 2)));
  EXPECT_FALSE(log.record(submission("during-2", 10, 3)));
  EXPECT_EQ(log.backlog(), 2u);
  EXPECT_FALSE(log.flush_backlog()) << "nothing to write to";
  EXPECT_EQ(log.backlog(), 2u) << "a failed write keeps them";
  ASSERT_FALSE(pg.start(dir, port)); // the same cluster, its data kept
  caf::expected<std::size_t> written = std::size_t{0};
  for (int i = 0; i < 60 && log.backlog() > 0; ++i) {
    written = log.flush_backlog();
    if (!written)
      std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(written) << describe(written.error());
  EXPECT_EQ(*written, 2u);
  EXPECT_EQ(log.backlog(), 0u);
  EXPECT_EQ(count_rows(pg.url(), "select count(*) from submissions"), 3);
  EXPECT_EQ(count_rows(pg.url(), "select stream_seq from submissions where "
                                 "job_id = 'during-2'"),
            3);
}

// Chaos seed 124 (session 22): after an outage, each of the log's
// connections failed its first statement (PostgreSQL had dropped it), and
// that one failure sent the next 2 s of submissions to the node's memory,
// where the node's kill lost them.
TEST_F(SubmissionLogOnPostgres,
       AConnectionDroppedByARestartIsMadeAgainNotTakenForAnOutage) {
  submission_log log{pg.url(), 1}; // one connection: the next write uses it
  ASSERT_FALSE(log.record(submission("before", 10, 1)));
  pg.stop();
  ASSERT_FALSE(pg.start(dir, port));
  EXPECT_FALSE(log.record(submission("after", 10, 2)));
  EXPECT_EQ(log.backlog(), 0u) << "written at once, not kept in memory";
  EXPECT_FALSE(log.record(submission("next", 10, 3)));
  EXPECT_EQ(log.backlog(), 0u);
  EXPECT_EQ(count_rows(pg.url(), "select count(*) from submissions"), 3);
}

// What was kept while PostgreSQL was away is written with the first
// submission that reaches it, not a sweep later (60 s by default).
TEST_F(SubmissionLogOnPostgres,
       TheFirstWriteAfterAnOutageTakesTheBacklogWithIt) {
  submission_log log{pg.url(), 1};
  pg.stop();
  EXPECT_FALSE(log.record(submission("during", 10, 1)));
  EXPECT_EQ(log.backlog(), 1u);
  ASSERT_FALSE(pg.start(dir, port));
  // The log rests 2 s after a failed write before it tries again.
  bool written = false;
  for (int i = 0; i < 100 && !written; ++i) {
    ASSERT_FALSE(log.record(submission("after-" + std::to_string(i), 10, 2)));
    written = count_rows(pg.url(), "select count(*) from submissions where "
                                   "job_id like 'after-%'") > 0;
    if (!written)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(written);
  EXPECT_EQ(log.backlog(), 0u);
  EXPECT_EQ(count_rows(pg.url(), "select count(*) from submissions where "
                                 "job_id = 'during'"),
            1);
}

// Chaos seed 131 (session 22): four jobs accepted during a PostgreSQL
// outage were kept in the memory of a node that the run then killed, and the
// broker lost their messages: no copy was left. With a spool, what a node
// kept is on disk before the reply and written after it starts again.
TEST_F(SubmissionLogOnPostgres,
       WhatAKilledNodeKeptWhilePostgresWasAwayIsWrittenAfterItsRestart) {
  auto spool = dir + "/submissions-n1.jsonl";
  pg.stop();
  {
    submission_log before{pg.url(), 1};
    ASSERT_FALSE(before.use_spool(spool));
    ASSERT_FALSE(before.record(submission("during-1", 10, 7)));
    ASSERT_FALSE(before.record(submission("during-2", 10, 8)));
    EXPECT_EQ(before.backlog(), 2u);
    submission_log twin{pg.url(), 1};
    auto err = twin.use_spool(spool);
    ASSERT_TRUE(err) << "a second node with the same spool is refused";
    EXPECT_NE(describe(err).find("in use by another process"),
              std::string::npos)
        << describe(err);
  } // gone as a killed node goes: nothing written, nothing flushed
  ASSERT_FALSE(pg.start(dir, port));
  submission_log after{pg.url(), 1};
  ASSERT_FALSE(after.use_spool(spool));
  EXPECT_EQ(after.backlog(), 2u) << "read back from the spool";
  caf::expected<std::size_t> written = std::size_t{0};
  for (int i = 0; i < 60 && after.backlog() > 0; ++i) {
    written = after.flush_backlog();
    if (!written)
      std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(written) << describe(written.error());
  EXPECT_EQ(*written, 2u);
  EXPECT_EQ(count_rows(pg.url(), "select stream_seq from submissions where "
                                 "job_id = 'during-2'"),
            8);
  EXPECT_EQ(std::filesystem::file_size(spool), 0u) << "emptied once written";
}

// A kill during an append leaves a line cut short; the next append must
// not be glued to it (it would be unreadable after the next restart).
TEST(SubmissionLog, ALineCutShortInTheSpoolDoesNotSpoilTheNextOne) {
  char tmpl[] = "/tmp/troupe-sublog-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto spool = dir + "/submissions-n1.jsonl";
  {
    std::ofstream out{spool, std::ios::binary};
    out << R"({"job_id":"whole","pipeline":"p","subject":"troupe.jobs.p",)"
        << R"("body":"{}","stream_seq":1})"
        << "\n"
        << R"({"job_id":"cut","pipe)";
  }
  // No PostgreSQL on this port: every submission is kept.
  auto url =
      "postgresql://postgres@127.0.0.1:" + std::to_string(free_port()) + "/x";
  {
    submission_log log{url, 1};
    ASSERT_FALSE(log.use_spool(spool));
    EXPECT_EQ(log.backlog(), 1u);
    ASSERT_FALSE(log.record(submission("next", 10, 2)));
  }
  submission_log again{url, 1};
  ASSERT_FALSE(again.use_spool(spool));
  EXPECT_EQ(again.backlog(), 2u) << "the whole line and the next, both read";
  std::filesystem::remove_all(dir);
}

TEST(SubmissionLog, TheBacklogIsBoundedAndSaysSoWhenFull) {
  // No PostgreSQL at all on this port: every write fails at once.
  submission_log log{"postgresql://postgres@127.0.0.1:" +
                         std::to_string(free_port()) + "/none",
                     1};
  constexpr std::size_t mib = 1u << 20;
  std::size_t kept = 0;
  caf::error last;
  for (int i = 0; i < 80 && !last; ++i) {
    last = log.record(submission("big-" + std::to_string(i), mib, i));
    kept += !last;
  }
  EXPECT_EQ(kept, submission_log::backlog_bytes_max / mib);
  ASSERT_TRUE(last);
  EXPECT_NE(describe(last).find("backlog is full"), std::string::npos)
      << describe(last);
  EXPECT_EQ(log.backlog(), kept);
}

} // namespace
} // namespace troupe::test
