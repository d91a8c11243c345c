#include "messages/heartbeat.hpp"

#include <gtest/gtest.h>

#include "messages/errc.hpp"

using namespace troupe;

TEST(Heartbeat, RoundTripsThroughJson) {
  heartbeat hb;
  hb.node_id = "n1";
  hb.host = "worker-3";
  hb.pid = 4242;
  hb.version = "0.1.0";
  hb.pipelines = {"demo", "ingest"};
  hb.in_flight = 17;
  hb.capacity = 1000;
  hb.state = "draining";
  hb.health = "degraded";
  hb.started_at_ms = 1763870000000;
  hb.sent_at_ms = 1763870012345;
  hb.seq = 12;
  auto back = decode_heartbeat(encode_heartbeat(hb));
  ASSERT_TRUE(back) << describe(back.error());
  EXPECT_EQ(back->node_id, hb.node_id);
  EXPECT_EQ(back->pipelines, hb.pipelines);
  EXPECT_EQ(back->state, hb.state);
  EXPECT_EQ(back->health, hb.health);
  EXPECT_EQ(back->started_at_ms, hb.started_at_ms);
  EXPECT_EQ(back->seq, hb.seq);
}

TEST(Heartbeat, RejectsMalformedInput) {
  for (const char* text :
       {"", "[]", R"({"host":"h"})", R"({"node_id":""})",
        R"({"node_id":"n","pid":"x"})", R"({"node_id":"n","pipelines":[1]})"}) {
    auto hb = decode_heartbeat(text);
    ASSERT_FALSE(hb) << text;
    EXPECT_EQ(code_of(hb.error()), errc::invalid_payload) << text;
  }
}

// Found by fuzz/heartbeat_fuzzer (UBSan float-cast-overflow): an integer
// field holding a float beyond int64's range was cast, which is undefined.
TEST(Heartbeat, RejectsAFloatInAnIntegerField) {
  for (const char* text :
       {R"({"node_id":"","started_at_ms":76387000001844674452})",
        R"({"node_id":"n","seq":1e300})", R"({"node_id":"n","pid":1.5})"}) {
    auto hb = decode_heartbeat(text);
    ASSERT_FALSE(hb) << text;
    EXPECT_EQ(code_of(hb.error()), errc::invalid_payload) << text;
  }
}
