// The connection the store's background workers share
// (runtime/pg/lazy_connection.hpp), against a real PostgreSQL: how what
// goes wrong on it is classified decides whether a caller waits for
// PostgreSQL or gives up.

#include <filesystem>

#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/cli/local_servers.hpp"
#include "runtime/pg/lazy_connection.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {
namespace {

class LazyConnection : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/troupe-lazy-XXXXXX";
    dir = mkdtemp(tmpl);
    ASSERT_FALSE(pg.start(dir, free_port()));
  }
  void TearDown() override {
    pg.stop();
    std::filesystem::remove_all(dir);
  }

  std::string dir;
  local_postgres pg;
};

int one(pqxx::connection& c) {
  return pqxx::nontransaction{c}.exec1("select 1")[0].as<int>();
}

// Chaos seed 302 (session 23): PostgreSQL restarted while a starting
// node's first lease renewal committed; libpqxx threw in_doubt_error, the
// node took it for an internal error and gave up starting (exit 2).
TEST_F(LazyConnection, ACommitCutOffByALostConnectionIsAnOutage) {
  lazy_connection conn{pg.url(), [](pqxx::connection&) {}};
  auto cut = conn.run("renewing", [](pqxx::connection&) -> int {
    throw pqxx::in_doubt_error{"Connection lost while committing"};
  });
  ASSERT_FALSE(cut);
  EXPECT_EQ(code_of(cut.error()), errc::unavailable) << describe(cut.error());
  EXPECT_NE(message_of(cut.error()).find("outcome is unknown"),
            std::string::npos);
  EXPECT_FALSE(conn.open()); // dropped: the next call connects again
  auto again = conn.run("reading", one);
  ASSERT_TRUE(again) << describe(again.error());
  EXPECT_EQ(*again, 1);
}

TEST_F(LazyConnection, AFailedStatementIsNotAnOutage) {
  lazy_connection conn{pg.url(), [](pqxx::connection&) {}};
  auto bad = conn.run("reading", [](pqxx::connection& c) {
    return pqxx::nontransaction{c}.exec1("select nonsense")[0].as<int>();
  });
  ASSERT_FALSE(bad);
  EXPECT_EQ(code_of(bad.error()), errc::internal);
}

} // namespace
} // namespace troupe::test
