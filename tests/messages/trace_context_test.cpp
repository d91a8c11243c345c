// W3C trace context: what troupe accepts from a submitter (body fields,
// checked; headers, ignored when invalid) and the span ids it derives.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "messages/delivery.hpp"
#include "messages/json_codec.hpp"
#include "messages/trace_context.hpp"

using namespace troupe;

namespace {

const std::string tp =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

delivery_fields with_body(std::string body) {
  delivery_fields d;
  d.body = std::move(body);
  d.msg_id = "k1";
  d.stream_seq = 7;
  d.published_ms = 1'700'000'000'000;
  d.num_delivered = 1;
  return d;
}

job_spec decode(const delivery_fields& d) {
  return decode_delivery(d, "p", input_limits{}, d.published_ms, nullptr);
}

} // namespace

TEST(TraceContext, OnlyWellFormedTraceparentsAreAccepted) {
  EXPECT_TRUE(valid_traceparent(tp));
  EXPECT_EQ(trace_id_of(tp), "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const std::string& bad : std::vector<std::string>{
           "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           std::string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b"} +
               '\0' + "-01"}) {
    EXPECT_FALSE(valid_traceparent(bad)) << bad;
    EXPECT_EQ(trace_id_of(bad), "") << bad;
  }
  EXPECT_TRUE(valid_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
  EXPECT_FALSE(valid_tracestate(std::string(513, 'a')));
  EXPECT_FALSE(valid_tracestate("a=b\n"));
}

TEST(TraceContext, SpanIdsAreDerivedStablyAndChildrenKeepTheTrace) {
  auto a = derived_span_id("job-1\x1f"
                           "1");
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a, derived_span_id("job-1\x1f"
                               "1"));
  EXPECT_NE(a, derived_span_id("job-1\x1f"
                               "2"));
  EXPECT_NE(a, "0000000000000000");
  auto child = child_traceparent(tp, a);
  EXPECT_TRUE(valid_traceparent(child));
  EXPECT_EQ(trace_id_of(child), trace_id_of(tp));
  EXPECT_EQ(child.substr(36, 16), a);
  EXPECT_EQ(child.substr(53), "01");
  EXPECT_EQ(child_traceparent("junk", a), "");
}

TEST(TraceContext, ASubmissionCarriesItAndAMalformedOneIsRefused) {
  auto ok = decode_submission(R"({"payload":1,"traceparent":")" + tp +
                              R"(","tracestate":"a=b"})");
  ASSERT_TRUE(ok) << describe(ok.error());
  EXPECT_EQ(ok->traceparent, tp);
  EXPECT_EQ(ok->tracestate, "a=b");
  auto again = decode_submission(encode_submission(*ok));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->traceparent, tp);
  EXPECT_EQ(again->tracestate, "a=b");
  for (const std::string& body :
       std::vector<std::string>{R"({"payload":1,"traceparent":"00-xyz"})",
                                R"({"payload":1,"traceparent":5})",
                                R"({"payload":1,"tracestate":"a=b"})",
                                R"({"payload":1,"traceparent":")" + tp +
                                    R"(","tracestate":"\u0001"})"}) {
    auto r = decode_submission(body);
    EXPECT_FALSE(r) << body;
  }
}

TEST(TraceContext, HeadersCountWhenValidAndTheBodyWins) {
  auto d = with_body(R"({"payload":1})");
  d.traceparent = tp;
  d.tracestate = "h=1";
  auto spec = decode(d);
  EXPECT_EQ(spec.traceparent, tp);
  EXPECT_EQ(spec.tracestate, "h=1");
  d.traceparent = "garbage"; // set by some library: ignored, not refused
  spec = decode(d);
  EXPECT_TRUE(spec.invalid_reason.empty());
  EXPECT_EQ(spec.traceparent, "");
  EXPECT_EQ(spec.tracestate, "");
  auto other = "00-11111111111111111111111111111111-2222222222222222-00";
  d = with_body(std::string{R"({"payload":1,"traceparent":")"} + other +
                R"("})");
  d.traceparent = tp;
  EXPECT_EQ(decode(d).traceparent, other);
}

TEST(TraceContext, EventsCarryTraceAndSpanIds) {
  job_event ev;
  ev.type = "job.started";
  ev.job_id = "j";
  ev.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  ev.span_id = "00f067aa0ba902b7";
  auto text = encode_event(ev);
  auto back = decode_event(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->trace_id, ev.trace_id);
  EXPECT_EQ(back->span_id, ev.span_id);
  ev.trace_id.clear();
  ev.span_id.clear();
  EXPECT_EQ(encode_event(ev).find("trace_id"), std::string::npos);
}
