#include "config/config_loader.hpp"

#include <gtest/gtest.h>

using namespace troupe;

TEST(ConfigLoader, Placeholder) {
  EXPECT_TRUE(true);
}
