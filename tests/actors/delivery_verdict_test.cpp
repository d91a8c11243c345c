#include "actors/delivery_verdict.hpp"

#include <iterator>

#include <gtest/gtest.h>

using namespace troupe;

namespace {

job_result result_of(job_outcome x) {
  job_result res;
  res.job_id = "j1";
  res.outcome = x;
  return res;
}

struct expectation {
  job_outcome outcome;
  delivery_action action;
  bool dropped;
};

// One row per outcome: a new outcome must be added here to be decided.
constexpr expectation every_outcome[] = {
    {job_outcome::finished, delivery_action::ack, false},
    {job_outcome::already_terminal, delivery_action::ack, false},
    {job_outcome::same_message, delivery_action::replace_held, false},
    {job_outcome::parked, delivery_action::leave, false},
    {job_outcome::requeued, delivery_action::nak, false},
    {job_outcome::abandoned, delivery_action::nak, false},
    {job_outcome::fenced, delivery_action::leave, false},
    {job_outcome::conflict, delivery_action::ack, true},
    {job_outcome::unrecordable, delivery_action::term, true},
};

} // namespace

TEST(DeliveryVerdict, EveryOutcomeHasItsAction) {
  for (const auto& e : every_outcome) {
    auto v = verdict_for(result_of(e.outcome));
    EXPECT_EQ(v.action, e.action) << to_string(e.outcome);
    EXPECT_EQ(v.dropped, e.dropped) << to_string(e.outcome);
  }
}

TEST(DeliveryVerdict, TheTableCoversEveryOutcome) {
  // job_outcome is dense from finished to unrecordable.
  auto last = static_cast<int>(job_outcome::unrecordable);
  ASSERT_EQ(std::size(every_outcome), static_cast<std::size_t>(last + 1));
  for (int i = 0; i <= last; ++i)
    EXPECT_EQ(static_cast<int>(every_outcome[i].outcome), i);
}

TEST(DeliveryVerdict, EveryTerminalStateOfAFinishedRunIsAcked) {
  for (auto s :
       {job_state::succeeded, job_state::dead_lettered, job_state::cancelled}) {
    auto res = result_of(job_outcome::finished);
    res.state = s;
    EXPECT_EQ(verdict_for(res).action, delivery_action::ack) << to_string(s);
  }
}

TEST(DeliveryVerdict, ARequeuedDeliveryComesBackAfterItsDelay) {
  auto res = result_of(job_outcome::requeued);
  res.requeue_ms = 500;
  auto v = verdict_for(res);
  EXPECT_EQ(v.action, delivery_action::nak);
  EXPECT_EQ(v.nak_delay_ms, 500);
}

TEST(DeliveryVerdict, AnAbandonedRunComesBackAfterASecond) {
  auto v = verdict_for(result_of(job_outcome::abandoned));
  EXPECT_EQ(v.action, delivery_action::nak);
  EXPECT_EQ(v.nak_delay_ms, abandoned_nak_delay_ms);
  EXPECT_EQ(abandoned_nak_delay_ms, 1000);
}

TEST(DeliveryVerdict, OnlyNaksCarryADelay) {
  for (const auto& e : every_outcome) {
    auto res = result_of(e.outcome);
    res.requeue_ms = 0;
    auto v = verdict_for(res);
    if (v.action != delivery_action::nak) {
      EXPECT_EQ(v.nak_delay_ms, 0) << to_string(e.outcome);
    }
  }
}

TEST(JobOutcome, OnlyAbandonedAndFencedRunsGaveUp) {
  for (const auto& e : every_outcome)
    EXPECT_EQ(gave_up(e.outcome), e.outcome == job_outcome::abandoned ||
                                      e.outcome == job_outcome::fenced)
        << to_string(e.outcome);
}
