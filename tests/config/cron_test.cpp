// Cron expressions and the schedules that use them: what slots come next
// (as naive wall-clock seconds), which due slots fire after an outage, and
// what a careless configuration is told.
#include <ctime>

#include <gtest/gtest.h>

#include "config/cron.hpp"
#include "config_test_support.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

/// Naive seconds of a wall-clock time.
std::int64_t at(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(timegm(&tm));
}

cron_expr parsed(const std::string& text) {
  cron_expr e;
  std::string why;
  EXPECT_TRUE(parse_cron(text, e, why)) << text << ": " << why;
  return e;
}

std::string error_of(const std::string& text) {
  cron_expr e;
  std::string why;
  EXPECT_FALSE(parse_cron(text, e, why)) << text;
  return why;
}

} // namespace

TEST(Cron, FiveFieldsStartOnTheMinute) {
  auto e = parsed("*/15 9-17 * * mon-fri");
  // Friday 2026-12-04 17:50 → Monday 09:00.
  EXPECT_EQ(cron_next(e, at(2026, 12, 4, 17, 50)), at(2026, 12, 7, 9, 0));
  EXPECT_EQ(cron_next(e, at(2026, 12, 7, 9, 0)), at(2026, 12, 7, 9, 15));
}

TEST(Cron, ALeadingSecondsFieldAndShorthands) {
  EXPECT_EQ(cron_next(parsed("*/10 * * * * *"), at(2026, 1, 1, 0, 0, 5)),
            at(2026, 1, 1, 0, 0, 10));
  EXPECT_EQ(cron_next(parsed("@hourly"), at(2026, 1, 1, 0, 30)),
            at(2026, 1, 1, 1, 0));
  EXPECT_EQ(cron_next(parsed("@daily"), at(2026, 12, 31, 23)), at(2027, 1, 1));
  EXPECT_EQ(cron_next(parsed("@monthly"), at(2026, 1, 31)), at(2026, 2, 1));
  EXPECT_EQ(cron_next(parsed("@weekly"), at(2026, 12, 2)), at(2026, 12, 6));
  EXPECT_EQ(cron_next(parsed("@yearly"), at(2026, 6, 1)), at(2027, 1, 1));
}

TEST(Cron, EveryCountsFromTheEpochSoThatNodesAgree) {
  auto e = parsed("@every 10s");
  EXPECT_EQ(cron_next(e, 1000000003), 1000000010);
  EXPECT_EQ(cron_next(e, 1000000010), 1000000020);
  EXPECT_EQ(cron_next(parsed("@every 90s"), 0), 90);
}

TEST(Cron, DayOfMonthOrDayOfWeekWhenBothAreGiven) {
  // The 13th, or any Friday (Vixie cron).
  auto e = parsed("0 0 13 * fri");
  EXPECT_EQ(cron_next(e, at(2026, 12, 1)), at(2026, 12, 4)); // a Friday
  EXPECT_EQ(cron_next(e, at(2026, 12, 11)), at(2026, 12, 13));
  // Sunday is 0 and 7.
  EXPECT_EQ(cron_next(parsed("0 0 * * 7"), at(2026, 12, 2)), at(2026, 12, 6));
}

TEST(Cron, ADayThatNeverComesEndsTheSearch) {
  EXPECT_EQ(cron_next(parsed("0 0 30 2 *"), at(2026, 1, 1)), -1);
  EXPECT_EQ(cron_next(parsed("0 0 29 2 *"), at(2026, 3, 1)), at(2028, 2, 29));
}

TEST(Cron, MalformedExpressionsSayWhatAndWhere) {
  EXPECT_NE(error_of("* * * *").find("5 fields"), std::string::npos);
  EXPECT_NE(error_of("61 * * * *").find("minute field: '61'"),
            std::string::npos);
  EXPECT_NE(error_of("* 5-2 * * *").find("empty range"), std::string::npos);
  EXPECT_NE(error_of("*/0 * * * *").find("step"), std::string::npos);
  EXPECT_NE(error_of("* * * smarch *").find("month field"), std::string::npos);
  EXPECT_NE(error_of("* * 1,,2 * *").find("empty list element"),
            std::string::npos);
  EXPECT_NE(error_of("@every 500ms").find("at least 1s"), std::string::npos);
  EXPECT_NE(error_of("@every soon").find("@every"), std::string::npos);
  EXPECT_NE(error_of("").find("0 field"), std::string::npos);
}

TEST(Cron, MissedSlotsFireAsCatchUpSays) {
  std::vector<std::int64_t> due{100, 101, 102, 103, 104, 105};
  // At 105 the last slot is on time; 100..103 were missed (more than 2 s).
  EXPECT_EQ(slots_to_fire(due, 105, "none"),
            (std::vector<std::int64_t>{103, 104, 105}));
  EXPECT_EQ(slots_to_fire(due, 105, "last"),
            (std::vector<std::int64_t>{102, 103, 104, 105}));
  EXPECT_EQ(slots_to_fire(due, 110, "none"), std::vector<std::int64_t>{});
  EXPECT_EQ(slots_to_fire(due, 110, "last"), std::vector<std::int64_t>{105});
  EXPECT_EQ(slots_to_fire(due, 110, "all"), due);
  EXPECT_EQ(slots_to_fire(due, 110, "all", 2, 2),
            (std::vector<std::int64_t>{104, 105}));
}

TEST(Cron, ASchedulesConfigurationIsChecked) {
  auto ok = parse(std::string{minimal} + R"(
[schedules.nightly]
cron = "0 3 * * *"
timezone = "Europe/Paris"
pipeline = "p"
payload = { report = "daily", days = [1, 2] }
overlap = "skip"
catch_up = "all"
)");
  ASSERT_TRUE(ok.ok()) << (ok.problems.empty() ? "" : ok.problems[0].message);
  auto& s = ok.config->schedules.at("nightly");
  EXPECT_EQ(s.payload, R"({"days":[1,2],"report":"daily"})");
  EXPECT_EQ(s.timezone, "Europe/Paris");
  auto never = parse(std::string{minimal} + R"(
[schedules.never]
cron = "0 0 30 2 *"
pipeline = "p"
)");
  ASSERT_EQ(never.problems.size(), 1u);
  EXPECT_NE(never.problems[0].message.find("never fires"), std::string::npos);
  auto bad = parse(std::string{minimal} + R"(
[schedules.broken]
cron = "0 25 * * *"
timezone = "Mars/Olympus"
pipeline = "nope"
overlap = "sometimes"
)");
  ASSERT_EQ(bad.problems.size(), 4u);
  std::string all;
  for (auto& p : bad.problems)
    all += p.path + ": " + p.message + "\n";
  EXPECT_NE(all.find("schedules.broken.cron: hour field: '25'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("unknown time zone 'Mars/Olympus'"), std::string::npos);
  EXPECT_NE(all.find("schedules.broken.pipeline"), std::string::npos);
  EXPECT_NE(all.find("\"allow\", \"skip\""), std::string::npos);
}
