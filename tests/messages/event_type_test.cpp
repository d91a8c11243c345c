#include "messages/event_type.hpp"

#include <gtest/gtest.h>

using namespace troupe;

namespace {

constexpr event_type all_types[] = {
    event_type::job_started,       event_type::stage_started,
    event_type::stage_succeeded,   event_type::stage_failed,
    event_type::job_retrying,      event_type::job_succeeded,
    event_type::job_dead_lettered, event_type::job_cancelled,
    event_type::job_replayed,      event_type::stage_progress,
    event_type::job_waiting};

} // namespace

TEST(EventType, EveryTypeRoundTripsThroughItsWireName) {
  for (auto x : all_types) {
    event_type back = event_type::job_replayed;
    ASSERT_TRUE(from_string(to_string(x), back)) << to_string(x);
    EXPECT_EQ(back, x);
  }
}

TEST(EventType, WireNamesStayAsDocumented) {
  EXPECT_EQ(to_string(event_type::job_started), "job.started");
  EXPECT_EQ(to_string(event_type::stage_started), "stage.started");
  EXPECT_EQ(to_string(event_type::stage_succeeded), "stage.succeeded");
  EXPECT_EQ(to_string(event_type::stage_failed), "stage.failed");
  EXPECT_EQ(to_string(event_type::job_retrying), "job.retrying");
  EXPECT_EQ(to_string(event_type::job_succeeded), "job.succeeded");
  EXPECT_EQ(to_string(event_type::job_dead_lettered), "job.dead_lettered");
  EXPECT_EQ(to_string(event_type::job_cancelled), "job.cancelled");
  EXPECT_EQ(to_string(event_type::job_replayed), "job.replayed");
  EXPECT_EQ(to_string(event_type::stage_progress), "stage.progress");
  EXPECT_EQ(to_string(event_type::job_waiting), "job.waiting");
}

TEST(EventType, UnknownNamesAreRefused) {
  event_type x = event_type::job_started;
  EXPECT_FALSE(from_string("job.exploded", x));
  EXPECT_FALSE(from_string("", x));
  EXPECT_FALSE(from_string("JOB.STARTED", x));
  job_event ev;
  ev.type = "stage.paused";
  EXPECT_FALSE(type_of(ev).has_value());
}

TEST(EventType, OnlyJobLevelEventsArePersisted) {
  for (auto x : all_types) {
    auto name = std::string{to_string(x)};
    EXPECT_EQ(is_job_level(x), name.compare(0, 4, "job.") == 0) << name;
  }
}

TEST(EventType, TerminalEventsNameTheirState) {
  for (auto x : all_types) {
    if (!is_terminal(x))
      continue;
    EXPECT_EQ("job." + to_string(terminal_state(x)), to_string(x));
  }
  EXPECT_FALSE(is_terminal(event_type::job_retrying));
  EXPECT_TRUE(ends_attempt(event_type::stage_failed));
  EXPECT_FALSE(ends_attempt(event_type::stage_started));
}
