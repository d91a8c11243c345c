// The four publishers of examples/publishers (C, Go, JavaScript, Python),
// run as the separate programs they are against a real node: each submits
// with an idempotency key, retries while no node answers, reports a
// refusal, and waits for the job's result or its dead letter.
#include <csignal>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "tests/runtime/child_process.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

const std::string src = TROUPE_SOURCE_DIR;

const char* node_config = R"([node]
id = "pub"
http = "127.0.0.1:0"
speculate = "0s"
[pipelines.greet]
stages = [
  { name = "hello", kind = "exec",
    command = ["/bin/sh", "-c", "cat > /dev/null; printf '{\"hello\":\"world\"}'"] },
]
[pipelines.poison]
stages = [
  { name = "fail", kind = "fault", permanent = true, fail_first = 1 },
]
)";

/// argv that runs one language's publisher.
std::vector<std::string> publisher(const std::string& lang) {
  if (lang == "c")
    return {PUBLISH_C};
  if (lang == "go")
    return {PUBLISH_GO};
  if (lang == "js")
    return {"node", src + "/examples/publishers/js/publish.mjs"};
  return {"/usr/bin/python3", src + "/examples/publishers/python/publish.py"};
}

const std::vector<std::string> languages = {"c", "go", "js", "python"};

class Publishers : public ::testing::Test {
protected:
  static inline std::unique_ptr<test_servers> servers;
  static inline std::unique_ptr<child_process> node;

  static void SetUpTestSuite() { servers = std::make_unique<test_servers>(); }
  static void TearDownTestSuite() {
    if (node) {
      node->signal(SIGTERM);
      node->wait(30s);
    }
    node.reset();
    servers.reset();
  }

  static void start_node() {
    write_file(servers->dir() + "/node.toml", node_config);
    node = std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 servers->dir() + "/node.toml"},
        servers->dir() + "/node.log",
        std::vector<std::string>{"TROUPE_NATS_URL=" + servers->nats_url(),
                                 "TROUPE_PG_URL=" + servers->pg_url()});
    ASSERT_TRUE(node->wait_for_output("ready;", 60s)) << node->output();
  }

  /// CTest runs each test in a process of its own: start the node unless
  /// an earlier test of this process did.
  static void ensure_node() {
    if (!node)
      start_node();
  }

  /// Runs `lang`'s publisher to its end: {exit code, output}.
  static std::pair<int, std::string> publish(const std::string& lang,
                                             const std::string& pipeline,
                                             const std::string& key,
                                             const std::string& payload) {
    auto argv = publisher(lang);
    argv.insert(argv.end(), {pipeline, key, payload});
    static int runs = 0; // a log per run (a key may be too long for a name)
    child_process p{argv,
                    servers->dir() + "/" + lang + "-" + std::to_string(++runs) +
                        ".log",
                    {"TROUPE_NATS_URL=" + servers->nats_url()}};
    int rc = p.wait(120s);
    return {rc, p.output()};
  }

  static std::int64_t sql(const std::string& q) {
    return count_rows(servers->pg_url(), q);
  }
};

} // namespace

TEST_F(Publishers, EachWaitsForANodeThenGetsItsResult) {
  ASSERT_EQ(read_file(src + "/examples/publishers/js/node_modules/nats/"
                            "package.json")
                .empty(),
            false)
      << "run: (cd examples/publishers/js && npm ci)";
  // Every publisher starts while no node runs: its first submissions get
  // no responders, and it retries with the same key.
  std::map<std::string, std::unique_ptr<child_process>> running;
  for (const auto& lang : languages) {
    auto argv = publisher(lang);
    argv.insert(argv.end(),
                {"greet", "hello-" + lang, R"({"from":")" + lang + R"("})"});
    running[lang] = std::make_unique<child_process>(
        argv, servers->dir() + "/" + lang + "-first.log",
        std::vector<std::string>{"TROUPE_NATS_URL=" + servers->nats_url()});
  }
  std::this_thread::sleep_for(1s); // deliberate: the node is not there yet
  start_node();
  for (auto& [lang, p] : running) {
    EXPECT_EQ(p->wait(120s), 0) << lang << ": " << p->output();
    EXPECT_NE(
        p->output().find("hello-" + lang + R"( succeeded {"hello":"world"})"),
        std::string::npos)
        << lang << ": " << p->output();
  }
  EXPECT_EQ(sql("select count(*) from jobs where pipeline = 'greet' and"
                " state = 'succeeded' and job_id like 'hello-%'"),
            4);
}

TEST_F(Publishers, TheSameKeyAgainIsTheSameJobRunOnce) {
  ensure_node();
  for (const auto& lang : languages) {
    auto [rc, out] = publish(lang, "greet", "hello-" + lang, "{}");
    EXPECT_EQ(rc, 0) << lang << ": " << out;
    EXPECT_NE(out.find("hello-" + lang + " succeeded"), std::string::npos)
        << lang << ": " << out;
    EXPECT_EQ(sql("select count(*) from job_attempts where job_id = 'hello-" +
                  lang + "'"),
              1)
        << lang;
  }
}

TEST_F(Publishers, ARefusalIsPrintedWithItsCodeAndExits2) {
  ensure_node();
  for (const auto& lang : languages) {
    auto [rc, out] = publish(lang, "no-such-pipeline", "nope-" + lang, "{}");
    EXPECT_EQ(rc, 2) << lang << ": " << out;
    EXPECT_NE(out.find("refused unknown_pipeline: unknown pipeline"),
              std::string::npos)
        << lang << ": " << out;
    auto [rc2, out2] =
        publish(lang, "greet", std::string(300, 'k'), "{}"); // key > 256
    EXPECT_EQ(rc2, 2) << lang << ": " << out2;
    EXPECT_NE(out2.find("refused key_too_long"), std::string::npos)
        << lang << ": " << out2;
  }
  EXPECT_EQ(sql("select count(*) from jobs where job_id like 'nope-%'"), 0);
}

TEST_F(Publishers, ADeadLetteredJobEndsWithItsErrorAndExits1) {
  ensure_node();
  for (const auto& lang : languages) {
    auto [rc, out] = publish(lang, "poison", "poison-" + lang, "{}");
    EXPECT_EQ(rc, 1) << lang << ": " << out;
    EXPECT_NE(out.find("poison-" + lang + " dead_lettered {\"code\":"),
              std::string::npos)
        << lang << ": " << out;
  }
  EXPECT_EQ(sql("select count(*) from dead_letters where job_id like "
                "'poison-%'"),
            4);
}
