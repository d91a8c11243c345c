// The wait the store writes for a job's next attempt (runtime/pg/
// pg_store_batch.hpp): PostgreSQL adds it to its own now(), so it must not
// depend on the node's wall clock, which may move between the decision and
// the write (chaos seed 1: a +352 s jump that ended in between made a 12 s
// retry wait 364 s).
#include <gtest/gtest.h>

#include "runtime/pg/pg_store_batch.hpp"

using namespace troupe;

namespace {

constexpr std::int64_t ms = 1000000; // ns

job_write retry_decided_at(std::int64_t wall_ms, std::int64_t steady_ns,
                           std::int64_t delay_ms) {
  job_write w;
  w.next_attempt_at_ms = wall_ms + delay_ms;
  w.wait_ms = delay_ms;
  w.decided_ns = steady_ns;
  return w;
}

} // namespace

TEST(WriteWait, AWallClockThatMovedSinceTheDecisionChangesNothing) {
  // Decided while the wall clock was 352 s ahead; written 40 ms later,
  // once it was back.
  auto w = retry_decided_at(1'000'352'000, 5'000 * ms, 12'000);
  EXPECT_EQ(write_wait_ms(w, 5'040 * ms, 1'000'000'040), 11'960);
  // And the other way round: a clock that went back cannot shorten it.
  auto back = retry_decided_at(1'000'000'000, 5'000 * ms, 12'000);
  EXPECT_EQ(write_wait_ms(back, 5'040 * ms, 1'000'352'040), 11'960);
}

TEST(WriteWait, AWaitThatHasPassedIsZero) {
  auto w = retry_decided_at(1'000'000'000, 5'000 * ms, 100);
  EXPECT_EQ(write_wait_ms(w, 5'250 * ms, 1'000'000'250), 0);
}

TEST(WriteWait, AnAbsoluteTimeFromOutsideCountsFromTheWallClock) {
  job_write w; // run_at_ms of a client's submission: no steady decision
  w.next_attempt_at_ms = 1'000'060'000;
  EXPECT_EQ(write_wait_ms(w, 0, 1'000'000'000), 60'000);
  job_write none;
  EXPECT_EQ(write_wait_ms(none, 0, 1'000'000'000), 0);
}
