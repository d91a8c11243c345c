// A JetStream delivery's headers and body are a publisher's words: what
// job they name, and what happens when they are malformed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "messages/delivery.hpp"

using namespace troupe;

namespace {

delivery_fields fields(std::string body, std::string msg_id = {},
                       std::string replay_of = {}) {
  delivery_fields d;
  d.body = std::move(body);
  d.msg_id = std::move(msg_id);
  d.replay_of = std::move(replay_of);
  d.stream_seq = 41;
  d.published_ms = 1'700'000'000'000;
  d.num_delivered = 1;
  return d;
}

job_spec decode(const delivery_fields& d) {
  return decode_delivery(d, "billing", input_limits{}, d.published_ms, nullptr);
}

} // namespace

TEST(delivery, TheKeyNamesTheJob) {
  auto spec = decode(fields(R"({"payload":{"n":1}})", "order-7"));
  EXPECT_EQ(spec.job_id, "order-7");
  EXPECT_EQ(spec.pipeline, "billing");
  EXPECT_EQ(spec.stream_seq, 41u);
  EXPECT_TRUE(spec.fresh);
  EXPECT_TRUE(spec.invalid_reason.empty());
}

// Hole 8: ids built from the stream sequence alone repeated after the
// stream was recreated.
TEST(delivery, WithoutAKeyTheIdCarriesSequenceAndTime) {
  auto spec = decode(fields(R"({"payload":1})"));
  EXPECT_EQ(spec.job_id, "js-41-1700000000000");
}

// Junk keeps a well-formed key (its dead letter is found under it); the
// job actor creates it, so an existing job of that id is never touched
// (hostile_input_test: JunkNamingAnExistingJob...).
TEST(delivery, JunkKeepsAWellFormedKeyAndShowsWhatWasSent) {
  auto spec = decode(fields("not json", "payroll-1"));
  EXPECT_FALSE(spec.invalid_reason.empty());
  EXPECT_EQ(spec.job_id, "payroll-1");
  auto shown = nlohmann::json::parse(spec.payload);
  EXPECT_EQ(shown["key"], "payroll-1");
  EXPECT_EQ(shown["raw"], "not json");
  EXPECT_FALSE(spec.fresh);
}

TEST(delivery, JunkWithAMalformedIdGetsAnIdOfItsOwn) {
  auto spec = decode(fields("not json", "x#1"));
  EXPECT_EQ(spec.job_id, "invalid-41-1700000000000");
  spec = decode(fields(R"({"payload":1})", "x#2", "x-other"));
  EXPECT_EQ(spec.job_id, "invalid-41-1700000000000");
}

// Hole 4: a binary body with NUL bytes was kept as {"raw": "...\u0000..."},
// which PostgreSQL refused on every write.
TEST(delivery, ABinaryBodyIsKeptAsStorableText) {
  std::string binary{"\x00\xff\x01{", 4};
  auto spec = decode(fields(binary, "k1"));
  EXPECT_FALSE(spec.invalid_reason.empty());
  EXPECT_EQ(spec.payload.find("\\u0000"), std::string::npos) << spec.payload;
  EXPECT_TRUE(nlohmann::json::accept(spec.payload));
}

TEST(delivery, AnOverlongKeyIsRefused) {
  auto spec = decode(fields(R"({"payload":1})", std::string(300, 'k')));
  EXPECT_EQ(spec.invalid_code, "key_too_long");
  EXPECT_EQ(spec.job_id.rfind("invalid-", 0), 0u);
}

// Hole 5: a key with `#` could collide with a replay's message id
// (`<job>#<life>`) and swallow it in the duplicate window.
TEST(delivery, AKeyWithAHashIsRefused) {
  auto spec = decode(fields(R"({"payload":1})", "job-1#2"));
  EXPECT_FALSE(spec.invalid_reason.empty());
  EXPECT_NE(spec.invalid_reason.find("#"), std::string::npos);
}

TEST(delivery, AReplayNamesItsJobAndLife) {
  auto spec = decode(fields(R"({"payload":1})", "job-1#3", "job-1"));
  EXPECT_EQ(spec.job_id, "job-1");
  EXPECT_EQ(spec.replay_life, 3);
  EXPECT_FALSE(spec.fresh);
}

TEST(delivery, AForgedReplayHeaderWithoutALifeIsRefused) {
  for (auto id : {"other", "job-1", "job-1#", "job-1#1", "job-1#x"}) {
    auto spec = decode(fields(R"({"payload":1})", id, "job-1"));
    EXPECT_FALSE(spec.invalid_reason.empty()) << id;
    EXPECT_NE(spec.job_id, "job-1") << id;
  }
}

TEST(delivery, ADelayNotYetDueIsReported) {
  auto d = fields(R"({"payload":1,"delay_ms":5000})", "k");
  std::int64_t left = 0;
  decode_delivery(d, "billing", input_limits{}, d.published_ms + 1000, &left);
  EXPECT_EQ(left, 4000);
}

TEST(delivery, TheLatestOfTheBodysAndTheHeadersTimesWins) {
  auto d = fields(R"({"payload":1,"delay_ms":5000})", "k");
  EXPECT_EQ(decode(d).run_at_ms, d.published_ms + 5000);
  d.delay = "9000";
  EXPECT_EQ(decode(d).run_at_ms, d.published_ms + 9000);
  d.run_at = std::to_string(d.published_ms + 60000);
  EXPECT_EQ(decode(d).run_at_ms, d.published_ms + 60000);
  auto body_at = fields(R"({"payload":1,"run_at_ms":1800000000000})", "k2");
  EXPECT_EQ(decode(body_at).run_at_ms, 1800000000000);
  EXPECT_EQ(decode(fields(R"({"payload":1})", "k3")).run_at_ms, 0);
}

TEST(delivery, AMalformedTimeHeaderDeadLettersTheMessageWithTheReason) {
  for (auto bad : {"-5", "soon", "1e3", "99999999999999999999", ""}) {
    auto d = fields(R"({"payload":1})", "k");
    d.delay = bad;
    auto spec = decode(d);
    if (std::string{bad}.empty()) {
      EXPECT_TRUE(spec.invalid_reason.empty());
      continue;
    }
    EXPECT_NE(spec.invalid_reason.find("Troupe-Delay"), std::string::npos)
        << bad << ": " << spec.invalid_reason;
  }
  auto d = fields(R"({"payload":1})", "k");
  d.run_at = "tomorrow";
  EXPECT_NE(decode(d).invalid_reason.find("Troupe-Run-At"), std::string::npos);
}

TEST(delivery, TheSchedulersPublicationNamesItsJobAndGeneration) {
  auto d = fields(R"({"payload":null,"tenant":"acme"})", "j9#g3", "j9");
  d.gen = "3";
  d.wake = "retry";
  auto spec = decode(d);
  EXPECT_TRUE(spec.invalid_reason.empty()) << spec.invalid_reason;
  EXPECT_EQ(spec.job_id, "j9");
  EXPECT_EQ(spec.gen, 3);
  EXPECT_TRUE(spec.resumed);
  EXPECT_FALSE(spec.fresh);
  EXPECT_EQ(spec.run_at_ms, 0);
  d.wake = "scheduled";
  EXPECT_FALSE(decode(d).resumed); // its first run announces job.started
  for (auto bad : {"0", "-1", "x", "2000000000"}) {
    d.gen = bad;
    EXPECT_FALSE(decode(d).invalid_reason.empty()) << bad;
  }
  auto orphan = fields(R"({"payload":1})", "k");
  orphan.gen = "1";
  EXPECT_NE(decode(orphan).invalid_reason.find("Troupe-Job-Id"),
            std::string::npos);
}
