// The live feed's filter (runtime/node/event_feed.hpp): a dashboard page
// asks only for the events it draws, and the hub hands each feed only
// those. The query is outside input: each malformed form is refused with
// what is wrong.
#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/event_feed.hpp"

using namespace troupe;

namespace {

using query = std::multimap<std::string, std::string>;

const std::string succeeded =
    R"({"job_id":"a","pipeline":"p","result":{"type":"job.failed"},)"
    R"("time_ms":1,"type":"job.succeeded"})";
const std::string progress =
    R"({"job_id":"b","pipeline":"p","time_ms":1,"type":"stage.progress"})";

feed_filter filter_of(const query& q) {
  auto f = feed_filter_of(q);
  EXPECT_TRUE(f) << message_of(f.error());
  return f ? *f : feed_filter{};
}

std::string refusal(const query& q) {
  auto f = feed_filter_of(q);
  return f ? "accepted" : message_of(f.error());
}

} // namespace

TEST(FeedFilter, TheTypeIsTheLastTopLevelKeyNotOneInTheResult) {
  EXPECT_EQ(event_type_of(succeeded), "job.succeeded");
  EXPECT_EQ(event_type_of(progress), "stage.progress");
  EXPECT_EQ(event_type_of("not json"), "");
  EXPECT_EQ(event_type_of(R"({"type":"unterminated)"), "unterminated");
}

TEST(FeedFilter, NoFilterWantsEveryEvent) {
  auto f = filter_of({});
  EXPECT_TRUE(f.wants("p", "a", event_type_of(succeeded)));
  EXPECT_TRUE(f.wants("q", "b", event_type_of(progress)));
}

TEST(FeedFilter, TypesAndJobsAreEitherOrWithinThePipeline) {
  auto f = filter_of({{"types", "job.succeeded,job.dead_lettered"},
                      {"job", "b"},
                      {"pipeline", "p"}});
  EXPECT_TRUE(f.wants("p", "a", event_type_of(succeeded))) << "a wanted type";
  EXPECT_TRUE(f.wants("p", "b", event_type_of(progress)))
      << "any event of a wanted job";
  EXPECT_FALSE(f.wants("p", "c", event_type_of(progress))) << "neither";
  EXPECT_FALSE(f.wants("q", "a", event_type_of(succeeded)))
      << "another pipeline";
}

TEST(FeedFilter, AJobIsMatchedByItsSubjectTail) {
  auto f = filter_of({{"job", "a b.c"}, {"job", "x"}});
  EXPECT_TRUE(f.wants("p", subject_tail("a b.c"), "stage.progress"));
  EXPECT_TRUE(f.wants("p", "x", "stage.progress"));
  EXPECT_FALSE(f.wants("p", "a", "stage.progress"));
}

TEST(FeedFilter, MalformedQueriesAreRefusedWithWhatIsWrong) {
  EXPECT_NE(refusal({{"pipeline", "a.b"}}).find("pipeline"), std::string::npos);
  EXPECT_NE(refusal({{"types", "job.succeeded,"}}).find("types"),
            std::string::npos)
      << "an empty type";
  EXPECT_NE(refusal({{"types", std::string("job\0x", 5)}}).find("types"),
            std::string::npos)
      << "a NUL byte";
  EXPECT_NE(refusal({{"types", "Job.Succeeded"}}).find("event type"),
            std::string::npos);
  EXPECT_NE(refusal({{"job", ""}}).find("job"), std::string::npos);
  EXPECT_NE(refusal({{"job", std::string(1025, 'x')}}).find("1024"),
            std::string::npos);
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += (i ? ",t" : "t");
  EXPECT_NE(refusal({{"types", many}}).find("at most 32"), std::string::npos);
  query jobs;
  for (int i = 0; i < 65; ++i)
    jobs.emplace("job", "j" + std::to_string(i));
  EXPECT_NE(refusal(jobs).find("at most 64"), std::string::npos);
  EXPECT_EQ(refusal({{"types", std::string(100000, ',')}}).substr(0, 6),
            "types:")
      << "a long list is refused at its first empty entry";
}

TEST(FeedFilter, ARawLineBreakInABodyCannotStartAFrameOfItsOwn) {
  EXPECT_EQ(sse_frame("{\"a\":1}\n\ndata: {\"forged\":1}\r"),
            "data: {\"a\":1}  data: {\"forged\":1} \n\n");
  EXPECT_EQ(sse_frame(std::string_view{"x\0y", 3}),
            std::string("data: x\0y\n\n", 11));
}
