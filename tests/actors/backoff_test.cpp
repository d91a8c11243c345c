#include "actors/backoff.hpp"

#include <gtest/gtest.h>

using namespace troupe;
using std::chrono::milliseconds;

namespace {

retry_policy policy(int max_attempts, int initial_ms, double mult, int max_ms,
                    jitter_kind j = jitter_kind::none) {
  retry_policy p;
  p.max_attempts = max_attempts;
  p.initial = milliseconds{initial_ms};
  p.multiplier = mult;
  p.max = milliseconds{max_ms};
  p.jitter = j;
  return p;
}

} // namespace

TEST(Backoff, GrowsExponentiallyUpToTheCap) {
  auto p = policy(10, 3000, 2.0, 20000);
  EXPECT_EQ(base_delay(p, 1), milliseconds{3000});
  EXPECT_EQ(base_delay(p, 2), milliseconds{6000});
  EXPECT_EQ(base_delay(p, 3), milliseconds{12000});
  EXPECT_EQ(base_delay(p, 4), milliseconds{20000});
  EXPECT_EQ(base_delay(p, 60), milliseconds{20000});
}

TEST(Backoff, HugeExponentsClampInsteadOfOverflowing) {
  auto p = policy(1000, 1000, 10.0, 100000);
  EXPECT_EQ(base_delay(p, 900), milliseconds{100000});
}

TEST(Backoff, FullJitterStaysWithinZeroAndTheDelay) {
  jitter_rng rng(7);
  auto d = milliseconds{1000};
  std::int64_t lo = 1000, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    auto x = apply_jitter(jitter_kind::full, d, rng).count();
    ASSERT_GE(x, 0);
    ASSERT_LE(x, 1000);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  // Over 10,000 samples the spread must cover most of the range.
  EXPECT_LT(lo, 50);
  EXPECT_GT(hi, 950);
}

TEST(Backoff, EqualJitterStaysWithinHalfAndTheDelay) {
  jitter_rng rng(7);
  auto d = milliseconds{1000};
  std::int64_t lo = 1000, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    auto x = apply_jitter(jitter_kind::equal, d, rng).count();
    ASSERT_GE(x, 500);
    ASSERT_LE(x, 1000);
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_LT(lo, 525);
  EXPECT_GT(hi, 975);
}

TEST(Backoff, NoJitterIsExact) {
  jitter_rng rng(1);
  EXPECT_EQ(apply_jitter(jitter_kind::none, milliseconds{1234}, rng),
            milliseconds{1234});
}

TEST(Backoff, SameSeedGivesSameDelays) {
  auto p = policy(5, 100, 2.0, 10000, jitter_kind::full);
  jitter_rng a(99), b(99);
  for (int i = 1; i < 50; ++i)
    EXPECT_EQ(retry_delay(p, i % 5 + 1, a), retry_delay(p, i % 5 + 1, b));
}

TEST(RetryDecision, RetriesUntilMaxAttempts) {
  auto p = policy(3, 10, 2.0, 100);
  EXPECT_EQ(decide_retry(p, 1, "boom", true), retry_decision::retry);
  EXPECT_EQ(decide_retry(p, 2, "boom", true), retry_decision::retry);
  EXPECT_EQ(decide_retry(p, 3, "boom", true), retry_decision::exhausted);
}

TEST(RetryDecision, NonRetryableErrorsStopAtOnce) {
  auto p = policy(5, 10, 2.0, 100);
  p.non_retryable = {"bad_input"};
  EXPECT_EQ(decide_retry(p, 1, "bad_input", true),
            retry_decision::non_retryable);
  EXPECT_EQ(decide_retry(p, 1, "anything", false),
            retry_decision::non_retryable);
}
