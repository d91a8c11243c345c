#include "messages/errc.hpp"

#include <gtest/gtest.h>

using namespace troupe;

TEST(Errc, RoundTripsThroughCafError) {
  auto err = make_error(errc::stale_epoch, "job j1 moved to epoch 4");
  EXPECT_EQ(code_of(err), errc::stale_epoch);
  EXPECT_EQ(describe(err), "stale_epoch: job j1 moved to epoch 4");
}

TEST(Errc, NoErrorIsNone) {
  caf::error none;
  EXPECT_EQ(code_of(none), errc::none);
  EXPECT_EQ(describe(none), "none");
}
