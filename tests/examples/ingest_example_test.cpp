// examples/ingest end to end: 50 files of mixed types (one of them a copy
// of another, one a corrupt PDF) through two nodes, one of them SIGKILLed
// mid-run. Judged by PostgreSQL (the example's tables and troupe's) and
// the stream, not by events or the runner's own summary.
#include <csignal>
#include <fstream>
#include <map>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "tests/runtime/child_process.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string src = TROUPE_SOURCE_DIR;
const std::string python = "/usr/bin/python3";

/// The chunking rule of examples/ingest/stages/chunk.py (200 words,
/// overlapping by 40), written out here so the test does not reuse it.
std::int64_t chunks_for(std::int64_t words) {
  return words <= 200 ? 1 : 1 + (words - 200 + 159) / 160;
}

class IngestExample : public ::testing::Test {
protected:
  test_servers servers;
  std::string corpus = servers.dir() + "/corpus";

  std::vector<std::string> env() const {
    return {"TROUPE_NATS_URL=" + servers.nats_url(),
            "TROUPE_PG_URL=" + servers.pg_url(), "TROUPE_HTTP_ADDR=127.0.0.1:0",
            "INGEST_PG_URL=" + servers.pg_url(), "INGEST_ROOT=" + corpus};
  }

  /// A node of the example's own configuration, run from the source tree
  /// (the stage commands are relative to it).
  std::unique_ptr<child_process> node(const std::string& id) {
    auto e = env();
    e.push_back("TROUPE_NODE_ID=" + id);
    return std::make_unique<child_process>(
        std::vector<std::string>{
            "/bin/sh", "-c",
            "cd '" + src +
                "' && exec '" TROUPE_BINARY
                "' node --config examples/ingest/ingest.toml"},
        servers.dir() + "/" + id + ".log", e);
  }

  json expected() const {
    std::ifstream in{corpus + "/expected.json"};
    return json::parse(in);
  }

  std::int64_t sql(const std::string& q) const {
    return count_rows(servers.pg_url(), q);
  }
};

} // namespace

TEST_F(IngestExample, FiftyFilesThroughTwoNodesOneKilledMidRun) {
  child_process gen{{python, src + "/examples/ingest/corpus.py", corpus},
                    servers.dir() + "/corpus.log"};
  ASSERT_EQ(gen.wait(30s), 0) << gen.output();
  auto n1 = node("n1");
  auto n2 = node("n2");
  ASSERT_TRUE(n1->wait_for_output("ready;", 60s)) << n1->output();
  ASSERT_TRUE(n2->wait_for_output("ready;", 60s)) << n2->output();

  child_process run{
      {python, src + "/examples/ingest/run.py", corpus, "--timeout", "240"},
      servers.dir() + "/run.log",
      env()};
  // Kill n1 once some documents are in and others are still on their way.
  ASSERT_TRUE(eventually(
      [&] {
        return sql("select count(*) from jobs where state = 'succeeded'") >= 12;
      },
      120s, 20ms));
  EXPECT_LT(sql("select count(*) from jobs where state = 'succeeded'"), 50);
  n1->signal(SIGKILL);
  EXPECT_EQ(n1->wait(10s), 128 + SIGKILL);

  ASSERT_EQ(run.wait(300s), 0) << run.output();
  auto e = expected();

  // 48 distinct documents; each with the chunks its word count gives.
  EXPECT_EQ(sql("select count(*) from ingest.documents"), 48);
  std::int64_t want_chunks = 0;
  pqxx::connection c{servers.pg_url()};
  pqxx::nontransaction tx{c};
  auto docs = tx.exec("select source, words, chunks from ingest.documents");
  ASSERT_EQ(docs.size(), 48u);
  for (const auto& row : docs) {
    auto name = row[0].as<std::string>();
    name = name.substr(name.rfind('/') + 1);
    // Which of two files with the same bytes is stored first is a race.
    if (e["duplicates"].contains(name))
      name = e["duplicates"][name].get<std::string>();
    ASSERT_TRUE(e["words"].contains(name)) << name;
    auto words = e["words"][name].get<std::int64_t>();
    EXPECT_EQ(row[1].as<std::int64_t>(), words) << name;
    EXPECT_EQ(row[2].as<std::int64_t>(), chunks_for(words)) << name;
    want_chunks += chunks_for(words);
  }
  EXPECT_EQ(sql("select count(*) from ingest.chunks"), want_chunks);
  EXPECT_EQ(sql("select count(*) from ingest.chunks"
                " where array_length(embedding, 1) = 256"),
            want_chunks);

  // The copy is one document with two sources; its job says so.
  EXPECT_EQ(sql("select count(*) from ingest.documents where"
                " array_length(sources, 1) = 2 and"
                " array_to_string(sources, ' ') like '%/doc-001.md%' and"
                " array_to_string(sources, ' ') like '%/copy-of-doc-001.md%'"),
            1);
  EXPECT_EQ(sql("select count(*) from jobs where correlation_id in"
                " ('doc-001.md', 'copy-of-doc-001.md') and"
                " state = 'succeeded' and (result->>'duplicate')::boolean"),
            1);

  // Every other job succeeded; the corrupt PDF is the one dead letter,
  // with a readable error.
  EXPECT_EQ(sql("select count(*) from jobs where pipeline = 'ingest'"), 50);
  EXPECT_EQ(sql("select count(*) from jobs where state = 'succeeded'"), 49);
  EXPECT_EQ(sql("select count(*) from dead_letters d join jobs j using"
                " (job_id) where j.correlation_id = 'corrupt.pdf' and"
                " d.stage = 'extract' and"
                " d.last_error like '%not a readable PDF%'"),
            1);
  EXPECT_EQ(sql("select count(*) from dead_letters"), 1);

  // Both nodes worked; n1's jobs were finished by n2.
  EXPECT_GE(sql("select count(distinct node) from job_attempts"), 2);

  // Nothing is left for the broker to deliver (ack_wait is 10 s).
  auto nc = connect_client(servers.nats_url());
  ASSERT_TRUE(nc);
  EXPECT_TRUE(eventually(
      [&] {
        jsStreamInfo* si = nullptr;
        jsErrCode jerr{};
        if (js_GetStreamInfo(&si, nc->js(), "TROUPE_JOBS", nullptr, &jerr) !=
            NATS_OK)
          return false;
        auto left = si->State.Msgs;
        jsStreamInfo_Destroy(si);
        return left == 0;
      },
      60s, 200ms));

  // The search finds the one document holding the phrase.
  child_process q{{python, src + "/examples/ingest/query.py", "--pg",
                   servers.pg_url(), "\"quick troupe of zebras\""},
                  servers.dir() + "/query.log"};
  ASSERT_EQ(q.wait(30s), 0) << q.output();
  EXPECT_NE(q.output().find("full text, 1 results"), std::string::npos)
      << q.output();
  EXPECT_NE(q.output().find(e["phrase_in"].get<std::string>()),
            std::string::npos)
      << q.output();
  n2->signal(SIGTERM);
  EXPECT_EQ(n2->wait(60s), 0) << n2->output();
}

// URLs served by a local HTTP server, a missing one, and a path outside
// INGEST_ROOT (a payload must not read the node's files).
TEST_F(IngestExample, UrlsFromALocalHttpServerAMissingOneAndAFileOutside) {
  child_process gen{
      {python, src + "/examples/ingest/corpus.py", corpus, "--count", "6"},
      servers.dir() + "/corpus.log"};
  ASSERT_EQ(gen.wait(30s), 0) << gen.output();
  int port = free_port();
  child_process web{{python, "-m", "http.server", "--bind", "127.0.0.1",
                     "--directory", corpus, std::to_string(port)},
                    servers.dir() + "/web.log"};
  auto n1 = node("n1");
  ASSERT_TRUE(n1->wait_for_output("ready;", 60s)) << n1->output();
  auto base = "http://127.0.0.1:" + std::to_string(port) + "/";
  child_process run{{python, src + "/examples/ingest/run.py",
                     base + "doc-002.html", base + "doc-003.pdf",
                     base + "missing.md", "/etc/passwd"},
                    servers.dir() + "/run.log",
                    env()};
  ASSERT_EQ(run.wait(120s), 0) << run.output();
  EXPECT_EQ(sql("select count(*) from ingest.documents where source like"
                " 'http://%' and type in ('html', 'pdf')"),
            2);
  EXPECT_EQ(sql("select count(*) from dead_letters where stage = 'fetch' and"
                " last_error like '%missing.md: HTTP 404%'"),
            1);
  EXPECT_EQ(sql("select count(*) from dead_letters where stage = 'fetch' and"
                " last_error like '%/etc/passwd'' is outside INGEST_ROOT%'"),
            1);
  web.signal(SIGTERM);
  n1->signal(SIGTERM);
  EXPECT_EQ(n1->wait(60s), 0) << n1->output();
}
