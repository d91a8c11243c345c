// JSON from outside is measured before it is parsed: depth on the bytes,
// NUL escapes found, and nothing recursive runs on a hostile shape.
#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "messages/json_codec.hpp"
#include "messages/json_guard.hpp"

using namespace troupe;

TEST(json_guard, NestingIsCountedOnTheBytesIgnoringStrings) {
  EXPECT_EQ(json_nesting("1", 64), 0);
  EXPECT_EQ(json_nesting(R"({"a":[1,{"b":2}]})", 64), 3);
  EXPECT_EQ(json_nesting(R"(["[[[[", "\"[[["])", 64), 1);
  EXPECT_EQ(json_nesting(R"({"a\\":[[]]})", 64), 3);
}

TEST(json_guard, CountingStopsJustPastTheLimit) {
  std::string deep(1'000'000, '[');
  EXPECT_EQ(json_nesting(deep, 64), 65);
}

// Hole 2: 200,000 levels of `[` (200 KB) overflowed the stack in the
// recursive depth check that ran after parsing.
TEST(json_guard, TwoHundredThousandLevelsAreRefusedNotParsed) {
  std::string deep(200'000, '[');
  deep += std::string(200'000, ']');
  auto parsed = parse_untrusted_json(deep, 64, "request body");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(code_of(parsed.error()), errc::nesting_too_deep);
  auto body = R"({"payload":)" + deep + "}";
  auto sub = decode_submission(body);
  ASSERT_FALSE(sub);
  EXPECT_EQ(code_of(sub.error()), errc::nesting_too_deep);
  EXPECT_FALSE(normalize_json(deep));
  EXPECT_FALSE(decode_event(deep));
  EXPECT_TRUE(parse_json_or_discarded(deep).is_discarded());
}

TEST(json_guard, NulEscapesAreFoundOnlyWhereTheyAreNul) {
  EXPECT_TRUE(json_has_nul(R"({"a":"x\u0000y"})"));
  EXPECT_TRUE(json_has_nul(R"({"a\u0000":1})"));
  EXPECT_FALSE(json_has_nul(R"({"a":"x\\u0000y"})")); // an escaped backslash
  EXPECT_FALSE(json_has_nul(R"({"a":"\u0001"})"));
  EXPECT_FALSE(json_has_nul(R"({"a":"\"u0000"})"));
}

// Hole 4: jsonb rejects U+0000, so a job carrying it failed every write
// and its message looped forever.
TEST(json_guard, ASubmissionWithNulIsRefusedWithItsReason) {
  auto sub = decode_submission(R"({"payload":{"a":"x\u0000"}})");
  ASSERT_FALSE(sub);
  EXPECT_EQ(code_of(sub.error()), errc::invalid_payload);
  EXPECT_NE(describe(sub.error()).find("NUL"), std::string::npos);
  EXPECT_FALSE(decode_submission(R"({"payload":1,"tenant":"t\u0000"})"));
  EXPECT_FALSE(normalize_json(R"(["\u0000"])"));
}

// Found by fuzz/untrusted_json_fuzzer: a number beyond a double throws
// out_of_range, not parse_error; uncaught, one admin request body ended
// the node.
TEST(json_guard, ANumberBeyondADoubleIsRefusedNotThrown) {
  auto parsed = parse_untrusted_json("[-1e400]", 16, "request body");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(code_of(parsed.error()), errc::invalid_payload);
  EXPECT_TRUE(parse_json_or_discarded("[-1e400]").is_discarded());
}

// Found by fuzz/untrusted_json_fuzzer: nlohmann's lexer ends the input at a
// NUL byte, so `{"a":1}<NUL>junk` was accepted as `{"a":1}`.
TEST(json_guard, ANulByteIsRefusedNotTakenForTheEnd) {
  std::string text{"{\"a\":1}\0{{{", 10};
  auto parsed = parse_untrusted_json(text, 16, "request body");
  ASSERT_FALSE(parsed);
  EXPECT_NE(message_of(parsed.error()).find("NUL byte at offset 7"),
            std::string::npos);
  EXPECT_TRUE(parse_json_or_discarded(text).is_discarded());
  std::string body{"{\"payload\":1}\0junk", 18};
  EXPECT_FALSE(decode_submission(body));
}

TEST(json_guard, MalformedInputSaysWhatAndWhere) {
  auto parsed = parse_untrusted_json("{\"a\":", 64, "request body");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(code_of(parsed.error()), errc::invalid_payload);
  EXPECT_NE(message_of(parsed.error()).find("request body"), std::string::npos);
  EXPECT_NE(message_of(parsed.error()).find("column"), std::string::npos);
  std::string binary{"\xff\xfe\x00\x01", 4};
  EXPECT_FALSE(decode_submission(binary));
}
