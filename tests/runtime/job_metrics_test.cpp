// job_metrics: the samples a run of known events gives on /metrics, with
// labels bounded by the configuration (anything else is "other").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "messages/job.hpp"
#include "runtime/observe/http_endpoint.hpp"
#include "runtime/observe/metrics.hpp"

using namespace troupe;

namespace {

job_event event(std::string type, std::string pipeline, std::string stage = "",
                std::int64_t duration_ms = -1, std::int64_t latency_ms = -1) {
  job_event ev;
  ev.type = std::move(type);
  ev.pipeline = std::move(pipeline);
  ev.stage = std::move(stage);
  ev.duration_ms = duration_ms;
  ev.latency_ms = latency_ms;
  return ev;
}

std::string rendered(const job_metrics& m) {
  prometheus_text out;
  m.render(out);
  return out.str();
}

/// Each of `lines` is a whole line of `text`.
void expect_lines(const std::string& text,
                  const std::vector<std::string>& lines) {
  for (const auto& line : lines)
    EXPECT_NE(text.find("\n" + line + "\n"), std::string::npos)
        << "missing: " << line << "\nin:\n"
        << text;
}

} // namespace

TEST(JobMetrics, CountsEventsUnderTheirConfiguredLabels) {
  job_metrics m{{{"ingest", {"fetch", "store"}}}};
  m.on_submitted("ingest");
  m.on_event(event("job.started", "ingest"));
  m.on_event(event("stage.succeeded", "ingest", "fetch", 20));
  m.on_event(event("stage.failed", "ingest", "store", 1500));
  m.on_event(event("job.retrying", "ingest", "store"));
  m.on_event(event("stage.succeeded", "ingest", "store", 3));
  m.on_event(event("job.succeeded", "ingest", "", -1, 1600));
  expect_lines(
      rendered(m),
      {R"(troupe_jobs_submitted_total{pipeline="ingest"} 1)",
       R"(troupe_jobs_started_total{pipeline="ingest"} 1)",
       R"(troupe_jobs_total{pipeline="ingest",state="succeeded"} 1)",
       R"(troupe_stage_attempts_total{pipeline="ingest",stage="store",outcome="failed"} 1)",
       R"(troupe_stage_attempts_total{pipeline="ingest",stage="store",outcome="succeeded"} 1)",
       R"(troupe_stage_retries_total{pipeline="ingest",stage="store"} 1)",
       R"(troupe_stage_attempt_duration_seconds_count{pipeline="ingest",stage="store"} 2)",
       R"(troupe_job_latency_seconds_bucket{pipeline="ingest",state="succeeded",le="2.5"} 1)",
       R"(troupe_job_latency_seconds_bucket{pipeline="ingest",state="succeeded",le="1"} 0)"});
}

TEST(JobMetrics, NamesOutsideTheConfigurationAreOther) {
  job_metrics m{{{"ingest", {"fetch"}}}};
  m.on_event(event("job.started", "made-up"));
  m.on_event(event("stage.failed", "ingest", "made-up", 1));
  m.on_event(event("stage.failed", "made-up", "fetch", 1));
  m.on_event(event("job.dead_lettered", "made-up", "", -1, 5));
  // A name that would break the text format if it reached a label: quote,
  // brace, newline, NUL.
  const std::string hostile{"x\"}\nfake_metric 1\0y", 19};
  m.on_event(event("job.started", hostile));
  m.on_event(event("stage.failed", "ingest", hostile, 1));
  auto text = rendered(m);
  expect_lines(
      text,
      {R"(troupe_jobs_started_total{pipeline="other"} 2)",
       R"(troupe_stage_attempts_total{pipeline="ingest",stage="other",outcome="failed"} 2)",
       R"(troupe_stage_attempts_total{pipeline="other",stage="other",outcome="failed"} 1)",
       R"(troupe_jobs_total{pipeline="other",state="dead_lettered"} 1)"});
  EXPECT_EQ(text.find("made-up"), std::string::npos);
  EXPECT_EQ(text.find("fake_metric"), std::string::npos);
  EXPECT_EQ(text.find('\0'), std::string::npos);
}

TEST(JobMetrics, NothingCountedIsNotRendered) {
  job_metrics m{{{"ingest", {"fetch"}}, {"other", {"x"}}}};
  m.on_event(event("job.cancelled", "ingest", "", -1, 5));
  m.on_event(event("no.such.type", "ingest"));
  auto text = rendered(m);
  expect_lines(text,
               {R"(troupe_jobs_total{pipeline="ingest",state="cancelled"} 1)"});
  // Families are always there; samples only once something was counted.
  EXPECT_NE(text.find("# TYPE troupe_stage_attempts_total counter"),
            std::string::npos);
  EXPECT_EQ(text.find("troupe_stage_attempts_total{"), std::string::npos);
  EXPECT_EQ(text.find("troupe_jobs_started_total{"), std::string::npos);
  EXPECT_EQ(text.find("state=\"succeeded\""), std::string::npos);
  EXPECT_EQ(text.find("troupe_stage_attempt_duration_seconds_count{"),
            std::string::npos);
}
