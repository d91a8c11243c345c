// The status API's request decoding and tenant binding, without servers
// (results_test drives the same through a real node).
#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/node/status_api.hpp"

using namespace troupe;

TEST(StatusRequest, TakesTheTenantFromABoundSubjectOnly) {
  EXPECT_EQ(subject_tenant("troupe.api.v1.tenant.acme.wait", "troupe", "wait"),
            "acme");
  EXPECT_FALSE(subject_tenant("troupe.api.v1.wait", "troupe", "wait"));
  EXPECT_FALSE(
      subject_tenant("troupe.api.v1.tenant.acme.status", "troupe", "wait"));
  EXPECT_FALSE(subject_tenant("troupe.api.v1.tenant..wait", "troupe", "wait"));
  EXPECT_FALSE(
      subject_tenant("troupe.api.v1.tenant.a.b.wait", "troupe", "wait"));
  EXPECT_FALSE(subject_tenant("other.api.v1.tenant.a.wait", "troupe", "wait"));
}

TEST(StatusRequest, DecodesAJobIdTenantAndTimeout) {
  auto r = decode_status_request(
      R"({"job_id":"j1","tenant":"acme","timeout_ms":1500})", true, {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->job_id, "j1");
  EXPECT_EQ(r->tenant, "acme");
  EXPECT_EQ(r->timeout.count(), 1500);
  auto bound =
      decode_status_request(R"({"job_id":"j1"})", false, std::string{"acme"});
  ASSERT_TRUE(bound);
  EXPECT_EQ(bound->tenant, "acme");
}

TEST(StatusRequest, RefusesWhatItDoesNotKnowOrTrust) {
  for (auto body :
       {R"({"job_id":"j","timeout_ms":5})", R"({"job_id":"j","x":1})",
        R"({"tenant":"a"})", R"({"job_id":null})", R"("j1")", "",
        R"({"job_id":"j","tenant":5})"}) {
    auto r = decode_status_request(body, false, {});
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(code_of(r.error()), errc::invalid_payload) << body;
  }
  EXPECT_FALSE(decode_status_request(R"({"job_id":"j","tenant":"b"})", false,
                                     std::string{"a"}));
  EXPECT_FALSE(
      decode_status_request(R"({"job_id":"j","timeout_ms":300001})", true, {}));
  EXPECT_FALSE(
      decode_status_request(R"({"job_id":"j","timeout_ms":2.5})", true, {}));
}

TEST(StatusRequest, AnotherTenantsJobReadsLikeNoJob) {
  job_status st;
  st.tenant = "acme";
  st.state = "succeeded";
  st.doc = {{"job_id", "j1"}};
  auto theirs = encode_status_reply(st, "j1", "globex", {});
  auto none = encode_status_reply(std::nullopt, "j1", "globex", {});
  EXPECT_EQ(theirs, none);
  EXPECT_NE(encode_status_reply(st, "j1", "acme", true).find("\"done\":true"),
            std::string::npos);
}
