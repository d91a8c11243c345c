// Where the submission API publishes a job: the pipeline's subject, or its
// high-priority band when the pipeline has one and the job asks for it.
#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/node/submit_api.hpp"
#include "runtime/pg/tenant_rates.hpp"

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

TEST(TenantRates, ReservedJobsWaitUntilTheBucketHasPaidForEach) {
  // 1.5 tokens held at 2/s: the first job runs now, the second waits for
  // the half token (250 ms), the third for one more (750 ms).
  auto waits = troupe::reserved_waits(1.5, 3, 2.0);
  ASSERT_EQ(waits.size(), 3u);
  EXPECT_EQ(waits[0], 0);
  EXPECT_EQ(waits[1], 250);
  EXPECT_EQ(waits[2], 750);
  // A bucket in debt (-2 tokens) at 1/s: 3 s for the next job.
  EXPECT_EQ(troupe::wait_for_tokens(-2.0, 1, 1.0), 3000);
  EXPECT_EQ(troupe::wait_for_tokens(5.0, 1, 1.0), 0);
}
