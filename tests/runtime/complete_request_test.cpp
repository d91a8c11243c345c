// What an outside system sends to troupe.api.v1.complete, at its worst,
// without servers (callback_test drives the same through a real node).
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "messages/errc.hpp"
#include "runtime/node/callback_api.hpp"

using namespace troupe;
using json = nlohmann::json;

namespace {

const std::string token = "job-1.0123456789abcdef0123456789abcdef";

} // namespace

TEST(CompleteRequest, AnOutputOrAnErrorBecomesTheStoredCompletion) {
  auto ok = decode_complete_request(
      json{{"token", token}, {"output", {{"a", 1}}}}.dump());
  ASSERT_TRUE(ok) << describe(ok.error());
  EXPECT_EQ(ok->job_id, "job-1");
  EXPECT_EQ(json::parse(ok->completion),
            json({{"ok", true}, {"output", {{"a", 1}}}}));
  auto bare = decode_complete_request(json{{"token", token}}.dump());
  ASSERT_TRUE(bare);
  EXPECT_EQ(json::parse(bare->completion)["output"], nullptr);
  auto err = decode_complete_request(json{
      {"token", token}, {"error", {{"code", "declined"}, {"retryable", false}}}}
                                         .dump());
  ASSERT_TRUE(err);
  EXPECT_EQ(json::parse(err->completion), json({{"ok", false},
                                                {"code", "declined"},
                                                {"message", ""},
                                                {"retryable", false}}));
}

TEST(CompleteRequest, MalformedDeepHugeAndNulBodiesAreRefused) {
  std::string deep = R"({"token":")" + token + R"(","output":)" +
                     std::string(200000, '[') + std::string(200000, ']') + "}";
  std::vector<std::string> bad = {
      "",
      "not json",
      "[1]",
      "\x01\x02\xff",
      R"({"output":1})",
      json{{"token", 5}}.dump(),
      json{{"token", "no-dot-here"}}.dump(),
      json{{"token", "job.0123"}}.dump(),
      json{{"token",
            std::string(700, 'a') + ".0123456789abcdef0123456789abcdef"}}
          .dump(),
      json{{"token", token}, {"extra", 1}}.dump(),
      json{{"token", token}, {"output", 1}, {"error", {{"code", "x"}}}}.dump(),
      json{{"token", token}, {"error", "declined"}}.dump(),
      json{{"token", token}, {"error", {{"message", "no code"}}}}.dump(),
      json{{"token", token}, {"error", {{"code", "has space"}}}}.dump(),
      json{{"token", token}, {"error", {{"code", std::string(65, 'x')}}}}
          .dump(),
      json{{"token", token},
           {"error", {{"code", "x"}, {"message", std::string(3000, 'm')}}}}
          .dump(),
      json{{"token", token}, {"error", {{"code", "x"}, {"retryable", "no"}}}}
          .dump(),
      json{{"token", token}, {"error", {{"code", "x"}, {"colour", 1}}}}.dump(),
      R"({"token":")" + token + R"(","output":"a\u0000b"})",
      deep,
  };
  for (auto& body : bad) {
    auto r = decode_complete_request(body);
    EXPECT_FALSE(r) << body.substr(0, 120);
    if (!r) {
      auto code = code_of(r.error());
      EXPECT_TRUE(code == errc::invalid_payload ||
                  code == errc::nesting_too_deep)
          << describe(r.error());
    }
  }
}
