// Where the submission API publishes a job: the pipeline's subject, or its
// high-priority band when the pipeline has one and the job asks for it.
#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/node/submit_api.hpp"

using namespace troupe;

namespace {

std::string subject_of(const std::string& body,
                       const std::set<std::string>& banded) {
  auto r = route_submission(body, {"ranked", "plain"}, subjects{"troupe"}, {},
                            {}, banded);
  return r ? r->subject : "error: " + describe(r.error());
}

} // namespace

TEST(SubmitRoute, APositivePriorityGoesToTheHighBandOfABandedPipeline) {
  std::set<std::string> banded{"ranked"};
  EXPECT_EQ(
      subject_of(R"({"pipeline":"ranked","payload":1,"priority":5})", banded),
      "troupe.jobs.ranked.high");
  EXPECT_EQ(
      subject_of(R"({"pipeline":"ranked","payload":1,"priority":0})", banded),
      "troupe.jobs.ranked");
  EXPECT_EQ(
      subject_of(R"({"pipeline":"ranked","payload":1,"priority":-3})", banded),
      "troupe.jobs.ranked");
  EXPECT_EQ(subject_of(R"({"pipeline":"ranked","payload":1})", banded),
            "troupe.jobs.ranked");
}

TEST(SubmitRoute, APipelineWithoutBandsTakesEveryPriorityOnItsSubject) {
  EXPECT_EQ(subject_of(R"({"pipeline":"plain","payload":1,"priority":1000})",
                       {"ranked"}),
            "troupe.jobs.plain");
  EXPECT_EQ(subject_of(R"({"pipeline":"ranked","payload":1,"priority":9})", {}),
            "troupe.jobs.ranked");
}
