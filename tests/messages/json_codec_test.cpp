#include "messages/json_codec.hpp"

#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace troupe;

TEST(Submission, DecodesAllFields) {
  auto s = decode_submission(
      R"({"payload":{"doc":"a.txt"},"tenant":"acme","correlation_id":"c-1",
        "priority":5,"delay_ms":250,"pipeline":"ingest","key":"k1"})");
  ASSERT_TRUE(s) << describe(s.error());
  EXPECT_EQ(s->payload, R"({"doc":"a.txt"})");
  EXPECT_EQ(s->tenant, "acme");
  EXPECT_EQ(s->correlation_id, "c-1");
  EXPECT_EQ(s->priority, 5);
  EXPECT_EQ(s->delay_ms, 250);
  EXPECT_EQ(s->pipeline, "ingest");
  EXPECT_EQ(s->key, "k1");
}

TEST(Submission, RoundTripsThroughEncode) {
  submission in;
  in.pipeline = "p";
  in.key = "k";
  in.tenant = "t";
  in.correlation_id = "c";
  in.payload = R"([1,2,{"x":null}])";
  in.priority = -3;
  in.delay_ms = 10;
  auto out = decode_submission(encode_submission(in));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->pipeline, in.pipeline);
  EXPECT_EQ(out->key, in.key);
  EXPECT_EQ(out->tenant, in.tenant);
  EXPECT_EQ(out->correlation_id, in.correlation_id);
  EXPECT_EQ(out->payload, in.payload);
  EXPECT_EQ(out->priority, in.priority);
  EXPECT_EQ(out->delay_ms, in.delay_ms);
}

TEST(Submission, RejectsMalformedInputWithAReason) {
  struct bad_case {
    const char* body;
    const char* expect;
  };
  bad_case cases[] = {
      {"{", "malformed JSON"},
      {"[]", "must be a JSON object"},
      {R"({"tenant":"x"})", "missing field 'payload'"},
      {R"({"payload":1,"tenant":7})", "'tenant' must be a string"},
      {R"({"payload":1,"priority":"high"})", "'priority' must be an integer"},
      {R"({"payload":1,"delay_ms":-1})", "'delay_ms' must be in"},
      {R"({"payload":1,"colour":"red"})", "unknown field 'colour'"},
  };
  for (const auto& c : cases) {
    auto s = decode_submission(c.body);
    ASSERT_FALSE(s) << c.body;
    EXPECT_EQ(code_of(s.error()), errc::invalid_payload) << c.body;
    EXPECT_NE(describe(s.error()).find(c.expect), std::string::npos)
        << describe(s.error());
  }
}

// Found by fuzz/submission_fuzzer: nlohmann reports a number beyond
// double's range with out_of_range, not parse_error, and it escaped the
// decoder (std::terminate on the intake path).
TEST(Submission, RejectsANumberBeyondDoubleRangeWithoutThrowing) {
  for (const char* body :
       {"5e333", R"({"payload":1e400})", R"({"payload":[-2.5e337095516]})"}) {
    caf::expected<submission> s = submission{};
    EXPECT_NO_THROW(s = decode_submission(body)) << body;
    ASSERT_FALSE(s) << body;
    EXPECT_EQ(code_of(s.error()), errc::invalid_payload) << body;
  }
}

TEST(Submission, RejectsOversizedBodyBeforeParsing) {
  input_limits limits;
  limits.max_payload_bytes = 16;
  auto s = decode_submission(R"({"payload":"0123456789abcdef"})", limits);
  ASSERT_FALSE(s);
  EXPECT_EQ(code_of(s.error()), errc::payload_too_large);
}

TEST(Submission, RejectsDeepNesting) {
  input_limits limits;
  limits.max_depth = 4;
  std::string deep =
      R"({"payload":)" + std::string(10, '[') + std::string(10, ']') + "}";
  auto s = decode_submission(deep, limits);
  ASSERT_FALSE(s);
  EXPECT_NE(describe(s.error()).find("nesting"), std::string::npos);
}

// Fuzz-style: random mutations of a valid body never crash the decoder and
// either decode or fail with invalid_payload.
TEST(Submission, SurvivesRandomMutations) {
  std::string base =
      R"({"payload":{"a":[1,2,3],"b":"x"},"tenant":"t","priority":1})";
  std::mt19937 rng(42);
  for (int i = 0; i < 5000; ++i) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      auto pos = rng() % s.size();
      switch (rng() % 3) {
      case 0:
        s[pos] = static_cast<char>(rng() % 256);
        break;
      case 1:
        s.erase(pos, 1);
        break;
      default:
        s.insert(pos, 1, "{}[]\",:"[rng() % 7]);
      }
      if (s.empty())
        s = "x";
    }
    auto r = decode_submission(s);
    if (!r) {
      EXPECT_EQ(code_of(r.error()), errc::invalid_payload) << s;
    }
  }
}

TEST(Event, RoundTrips) {
  job_event ev;
  ev.type = "job.retrying";
  ev.job_id = "j1";
  ev.pipeline = "ingest";
  ev.stage = "fetch";
  ev.stage_index = 0;
  ev.attempt = 2;
  ev.node = "n1";
  ev.time_ms = 1700000000000;
  ev.error_code = "exit_code";
  ev.error = "exit 75";
  ev.next_retry_ms = 6000;
  ev.correlation_id = "c";
  ev.tenant = "acme";
  auto out = decode_event(encode_event(ev));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->type, ev.type);
  EXPECT_EQ(out->job_id, ev.job_id);
  EXPECT_EQ(out->stage, ev.stage);
  EXPECT_EQ(out->attempt, ev.attempt);
  EXPECT_EQ(out->error_code, ev.error_code);
  EXPECT_EQ(out->error, ev.error);
  EXPECT_EQ(out->next_retry_ms, ev.next_retry_ms);
  EXPECT_EQ(out->tenant, ev.tenant);
}

// The heartbeat fuzzer's UBSan finding (float-cast-overflow) applies here
// too: nlohmann casts a float to an integer field, undefined out of range.
TEST(Event, RejectsAFloatInAnIntegerField) {
  for (const char* text : {
           R"({"type":"t","job_id":"j","time_ms":1e300})",
           R"({"type":"t","job_id":"j","stage_index":-1e20})",
           R"({"type":"t","job_id":"j","attempt":2.5})",
       }) {
    auto ev = decode_event(text);
    ASSERT_FALSE(ev) << text;
    EXPECT_EQ(code_of(ev.error()), errc::invalid_payload) << text;
  }
}

TEST(AttemptRecord, RejectsAFloatInAnIntegerField) {
  auto a = attempt_from_json(nlohmann::json::parse(
      R"({"stage_index":0,"stage":"s","attempt":1,"started_at_ms":1e300})"));
  ASSERT_FALSE(a);
  EXPECT_EQ(code_of(a.error()), errc::invalid_payload);
}

TEST(AttemptRecord, RoundTripsThroughJson) {
  attempt_record a;
  a.stage_index = 2;
  a.stage = "embed";
  a.attempt = 3;
  a.life = 2;
  a.started_at_ms = 5;
  a.duration_ms = 7;
  a.node = "n";
  a.ok = false;
  a.error_code = "timeout";
  a.error_message = "after 30s";
  auto b = attempt_from_json(to_json(a));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->stage, a.stage);
  EXPECT_EQ(b->attempt, a.attempt);
  EXPECT_EQ(b->life, a.life);
  EXPECT_EQ(b->error_code, a.error_code);
  EXPECT_EQ(b->error_message, a.error_message);
}

TEST(JobState, NamesRoundTrip) {
  for (auto s :
       {job_state::queued, job_state::running, job_state::retrying,
        job_state::succeeded, job_state::dead_lettered, job_state::cancelled}) {
    job_state back;
    ASSERT_TRUE(from_string(to_string(s), back));
    EXPECT_EQ(back, s);
  }
  job_state x;
  EXPECT_FALSE(from_string("done", x));
}

TEST(Event, CarriesAResultOrSaysItWasLeftOut) {
  job_event ev;
  ev.type = "job.succeeded";
  ev.job_id = "j1";
  ev.pipeline = "p";
  ev.result = R"({"a":[1,2]})";
  auto text = encode_event(ev);
  EXPECT_NE(text.find(R"("result":{"a":[1,2]})"), std::string::npos) << text;
  auto back = decode_event(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->result, ev.result);
  // The event log keeps the event without the result (the row has it).
  EXPECT_EQ(encode_logged_event(ev).find("result"), std::string::npos);
  job_event big = ev;
  big.result.clear();
  big.result_bytes = 70000;
  auto omitted = nlohmann::json::parse(encode_event(big));
  EXPECT_EQ(omitted["result_omitted"], true);
  EXPECT_EQ(omitted["result_bytes"], 70000);
  EXPECT_FALSE(omitted.contains("result"));
  EXPECT_EQ(omitted.dump(), encode_event(big)); // keys in nlohmann's order
}
