// The consumer mender's judgement of misdeliveries (runtime/node/
// consumer_mender.hpp), without a broker: which consumer an ack subject
// names, and when a run of misdeliveries is a broken consumer.
#include <gtest/gtest.h>

#include "runtime/node/consumer_mender.hpp"

using namespace troupe;
using namespace std::chrono_literals;

TEST(ConsumerOfAck, NamesTheConsumerOfAJetStreamAckSubject) {
  EXPECT_EQ(
      consumer_of_ack("$JS.ACK.TROUPE_JOBS.troupe_slow.1.846.12.1764900000"
                      "000000000.3"),
      "troupe_slow");
  EXPECT_EQ(consumer_of_ack("$JS.ACK.S.troupe_p_high.2.9.9.1.0"),
            "troupe_p_high");
  EXPECT_EQ(consumer_of_ack(""), "");
  EXPECT_EQ(consumer_of_ack("_INBOX.abc.def"), "");
  EXPECT_EQ(consumer_of_ack("$JS.ACK.TROUPE_JOBS"), "");
  EXPECT_EQ(consumer_of_ack("$JS.ACK.TROUPE_JOBS.troupe_p"), "");
}

// One slip, or slips with long gaps between them, are the broker's
// moments; misdeliveries that keep coming for the whole window are a
// consumer whose filter state it broke (chaos seed 36, session 20).
TEST(MisdeliveryStreak, OnlyMisdeliveriesThatLastTheWindowCount) {
  misdelivery_streak s{30s};
  auto t = std::chrono::steady_clock::time_point{} + 1h;
  EXPECT_FALSE(s.note(t));
  // A gap longer than the window starts over.
  EXPECT_FALSE(s.note(t + 31s));
  EXPECT_FALSE(s.note(t + 50s));
  EXPECT_FALSE(s.note(t + 60s));
  EXPECT_TRUE(s.note(t + 61s)); // 30 s since t + 31 s, no gap over 30 s
  // Then it starts over.
  EXPECT_FALSE(s.note(t + 62s));
  EXPECT_FALSE(s.note(t + 80s));
  EXPECT_TRUE(s.note(t + 92s));
}
