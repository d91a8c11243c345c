// The direct JSON writer must print exactly what nlohmann-json prints (wire
// bodies did not change when events stopped being built as json trees), and
// must always print valid JSON.
#include "messages/json_text.hpp"

#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "messages/json_codec.hpp"

using namespace troupe;
using nlohmann::json;

namespace {

/// nlohmann's own rendering of the same text: parse, print again.
std::string as_nlohmann_prints_it(const std::string& text) {
  return json::parse(text).dump();
}

} // namespace

TEST(JsonText, StringsAreEscapedLikeNlohmann) {
  for (std::string s :
       {std::string{"plain"}, std::string{"quote \" and backslash \\"},
        std::string{"tab\tnewline\nreturn\rformfeed\fbackspace\b"},
        std::string{"control \x01\x1f and del \x7f"},
        std::string{"unicode: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
        std::string{""}, std::string{"slash / stays"}}) {
    auto out = json_string(s);
    EXPECT_EQ(out, json(s).dump()) << s;
    EXPECT_EQ(json::parse(out).get<std::string>(), s);
  }
}

TEST(JsonText, InvalidUtf8BecomesReplacementCharacters) {
  std::string bad = "a\xFF"
                    "b\xC3"
                    "c\xED\xA0\x80"
                    "d";
  auto out = json_string(bad);
  auto back = json::parse(out).get<std::string>();
  EXPECT_EQ(back, "a\xEF\xBF\xBD"
                  "b\xEF\xBF\xBD"
                  "c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                  "d");
}

TEST(JsonText, RandomBytesAlwaysGiveValidJson) {
  std::mt19937 rng{7};
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, '\0');
    for (auto& c : s)
      c = static_cast<char>(rng() % 256);
    auto out = json_string(s);
    auto parsed = json::parse(out, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded()) << out;
    // Valid UTF-8 prints exactly as nlohmann prints it (which throws on
    // invalid UTF-8; we replace, and how many U+FFFD is not a contract).
    std::string reference;
    try {
      reference = json(s).dump();
    } catch (const json::exception&) {
      continue;
    }
    EXPECT_EQ(out, reference);
  }
}

TEST(JsonText, EventsPrintExactlyAsBefore) {
  job_event full;
  full.type = "job.retrying";
  full.job_id = "order-\"42\"";
  full.pipeline = "billing";
  full.stage = "charge";
  full.stage_index = 1;
  full.attempt = 2;
  full.node = "n1";
  full.time_ms = 1763900000123;
  full.error_code = "exit_code";
  full.error = "exit 3: line1\nline2";
  full.next_retry_ms = 200;
  full.correlation_id = "c-1";
  full.tenant = "acme";
  full.duration_ms = 17;
  full.latency_ms = 0;
  job_event minimal;
  minimal.type = "job.started";
  minimal.job_id = "j";
  for (const auto& ev : {full, minimal}) {
    auto out = encode_event(ev);
    EXPECT_EQ(out, as_nlohmann_prints_it(out));
    auto back = decode_event(out);
    ASSERT_TRUE(back) << out;
    EXPECT_EQ(back->job_id, ev.job_id);
    EXPECT_EQ(back->error, ev.error);
    EXPECT_EQ(back->stage_index, ev.stage_index);
    EXPECT_EQ(back->next_retry_ms, ev.next_retry_ms);
    EXPECT_EQ(back->latency_ms, ev.latency_ms);
  }
  EXPECT_EQ(encode_event(minimal),
            R"({"job_id":"j","node":"","pipeline":"","time_ms":0,)"
            R"("type":"job.started"})");
}

TEST(JsonText, ObjectsNestAndTakeRawJson) {
  std::string out;
  json_object_writer w{out};
  w.num("a", -5).boolean("b", true).raw("c", R"({"x":[1,2]})");
  auto inner = w.object("d");
  inner.str("e", "f");
  inner.close();
  w.close();
  EXPECT_EQ(out, R"({"a":-5,"b":true,"c":{"x":[1,2]},"d":{"e":"f"}})");
  EXPECT_EQ(out, as_nlohmann_prints_it(out));
}

TEST(JsonText, ValidTextReplacesInvalidUtf8AndNul) {
  EXPECT_EQ(valid_text("ok caf\xC3\xA9"), "ok caf\xC3\xA9");
  EXPECT_EQ(valid_text(std::string{"a\0b", 3}), "a\xEF\xBF\xBD"
                                                "b");
  // A multi-byte character cut in half at the end (stderr cut at 2 KiB).
  EXPECT_EQ(valid_text("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");
}
