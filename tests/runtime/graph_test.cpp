// Stages as a graph against real servers (docs/workflows.md, "Parallel
// stages"): stages whose inputs are ready run at the same time as sibling
// stage actors, a failing branch retries alone, and a node killed mid-graph
// leaves its successor only the branches without a checkpoint. Verdicts
// come from PostgreSQL and from the stages' own record of their runs.
#include <csignal>
#include <fstream>
#include <memory>
#include <string>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

class graph_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new test_servers();
    auto dir = servers_->dir();
    write_file(dir + "/branch.sh", branch_script(dir));
    write_file(dir + "/node.toml", config_text(dir));
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  // A branch records each run (runs-<stage>: one job id per line), fails
  // with 75 (retryable) on its first two runs if the payload names it
  // `flaky`, sleeps payload.sleep.<stage> seconds (default 3), and outputs
  // the fetched document with its name appended.
  static std::string branch_script(const std::string& dir) {
    std::string text = R"sh(in=$(cat)
name=$1
job=$(printf '%s' "$in" | jq -r .job_id)
runs=DIR/runs-$name
echo "$job" >> "$runs"
if [ "$(printf '%s' "$in" | jq -r '.payload.flaky // ""')" = "$name" ]; then
  n=$(grep -c "^$job\$" "$runs")
  if [ "$n" -le 2 ]; then echo "flaky run $n" >&2; exit 75; fi
fi
if [ "$(printf '%s' "$in" | jq -r '.payload.broken // ""')" = "$name" ]; then
  echo "broken for good" >&2; exit 1
fi
sleep "$(printf '%s' "$in" | jq -r ".payload.sleep.$name // 3")"
printf '%s' "$in" | jq -c "{$name: (.previous.fetch.doc + \"-$name\")}"
)sh";
    return text.replace(text.find("DIR"), 3, dir);
  }

  static std::string branch(const std::string& dir, const std::string& name) {
    return R"([[pipelines.graph.stages]]
name = ")" +
           name +
           R"("
kind = "exec"
after = ["fetch"]
retry = { max_attempts = 5, initial = "100ms", max = "200ms" }
command = ["sh", ")" +
           dir + "/branch.sh\", \"" + name + "\"]\n";
  }

  static std::string config_text(const std::string& dir) {
    return R"([node]
http = "127.0.0.1:0"
drain_grace = "1s"
blocking_threads = 6

[cluster]
heartbeat_interval = "250ms"
failure_timeout = "2s"

[nats]
url = ")" + servers_->nats_url() +
           R"("
ack_wait = "30s"

[postgres]
url = ")" + servers_->pg_url() +
           R"("

[[pipelines.graph.stages]]
name = "fetch"
kind = "exec"
command = ["jq", "-c", "{doc: .payload.doc}"]

)" + branch(dir, "a") +
           branch(dir, "b") + branch(dir, "c") + R"(
[[pipelines.graph.stages]]
name = "join"
kind = "exec"
after = ["a", "b", "c"]
command = ["jq", "-c",
  "{joined: [.previous.a.a, .previous.b.b, .previous.c.c], seen: (.previous | keys)}"]
)";
  }

  std::unique_ptr<child_process> start_node(const std::string& id) {
    return start_troupe_node(servers_->dir() + "/node.toml",
                             servers_->dir() + "/node-" + id + ".log", id);
  }

  static std::int64_t count(const std::string& sql) {
    return count_rows(servers_->pg_url(), sql);
  }

  static std::string text(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    auto r = n.exec(sql);
    return r.empty() || r[0][0].is_null() ? std::string{} : r[0][0].c_str();
  }

  static bool ended(const std::string& id, std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
          return count("select count(*) from jobs where job_id = '" + id +
                       "' and state in ('succeeded', 'dead_lettered')") == 1;
        },
        timeout, 100ms);
  }

  static void publish(const std::string& id, const json& payload) {
    auto nats = connect_client(servers_->nats_url());
    auto r = nats->js_publish("troupe.jobs.graph",
                              json{{"payload", payload}}.dump(), id);
    ASSERT_TRUE(r) << describe(r.error());
  }

  /// How many times stage `name` ran for job `id` (its own record).
  static int runs(const std::string& name, const std::string& id) {
    std::ifstream in{servers_->dir() + "/runs-" + name};
    int n = 0;
    for (std::string line; std::getline(in, line);)
      n += line == id;
    return n;
  }

  static std::string shell_output(const std::string& cmds) {
    static int calls = 0; // a log each: child_process appends
    child_process sh{
        {TROUPE_BINARY, "shell", "--nats", servers_->nats_url(), "-c", cmds},
        servers_->dir() + "/shell-" + std::to_string(++calls) + ".log"};
    EXPECT_EQ(sh.wait(60s), 0) << sh.output();
    return sh.output();
  }

  static std::int64_t attempts(const std::string& id, const std::string& stage,
                               bool ok) {
    return count("select count(*) from job_attempts where job_id = '" + id +
                 "' and stage = '" + stage +
                 "' and ok = " + (ok ? "true" : "false"));
  }

  static inline test_servers* servers_ = nullptr;
};

TEST_F(graph_test, ThreeBranchesRunTogetherAndOnlyTheFlakyOneRetries) {
  auto node = start_node("g-1");
  publish("g1", json{{"doc", "d"}, {"flaky", "b"}});
  // While a and c run, `tree` shows each as a stage actor of the job.
  std::string tree;
  EXPECT_TRUE(eventually(
      [&] {
        tree = shell_output("tree all");
        return tree.find("stage a attempt 1  running (stage actor #") !=
                   std::string::npos &&
               tree.find("stage c attempt 1  running (stage actor #") !=
                   std::string::npos;
      },
      20s, 200ms))
      << tree;
  ASSERT_TRUE(ended("g1", 60s));
  ASSERT_EQ(text("select state from jobs where job_id = 'g1'"), "succeeded")
      << text("select last_error from jobs where job_id = 'g1'");
  // Only b was retried: two failed attempts, then one that succeeded.
  for (auto stage : {"fetch", "a", "c", "join"}) {
    EXPECT_EQ(attempts("g1", stage, true), 1) << stage;
    EXPECT_EQ(attempts("g1", stage, false), 0) << stage;
  }
  EXPECT_EQ(attempts("g1", "b", false), 2);
  EXPECT_EQ(attempts("g1", "b", true), 1);
  EXPECT_EQ(count("select count(*) from job_events where job_id = 'g1' and "
                  "type = 'job.retrying' and stage = 'b'"),
            2);
  // a, b and c ran at the same time: their successful attempts overlap.
  EXPECT_EQ(count("select count(*) from (select max(started_at) as s, "
                  "min(started_at + duration_ms * interval '1 ms') as e "
                  "from job_attempts where job_id = 'g1' and ok and stage in "
                  "('a', 'b', 'c')) x where s < e"),
            1)
      << text("select string_agg(stage || ' ' || started_at || ' ' || "
              "duration_ms, '; ') from job_attempts where job_id = 'g1'");
  // The join received the outputs of every stage it comes after.
  auto result = json::parse(text("select result::text from jobs where "
                                 "job_id = 'g1'"));
  EXPECT_EQ(result["joined"], json::array({"d-a", "d-b", "d-c"}));
  EXPECT_EQ(result["seen"], json::array({"a", "b", "c", "fetch"}));
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id = "
                  "'g1'"),
            5);
  EXPECT_EQ(runs("a", "g1"), 1);
  EXPECT_EQ(runs("b", "g1"), 3);
  // `job` shows the graph: what each stage comes after, and how it went.
  auto shown = shell_output("job g1");
  EXPECT_NE(shown.find("graph (stages run in parallel"), std::string::npos)
      << shown;
  auto line = [&](const std::string& start) {
    auto at = shown.find(start, shown.find("graph ("));
    return at == std::string::npos
               ? std::string{}
               : shown.substr(at, shown.find('\n', at) - at);
  };
  EXPECT_EQ(line("#1 a"), "#1 a      fetch    done") << shown;
  EXPECT_EQ(line("#2 b"), "#2 b      fetch    done after failed 2x") << shown;
  EXPECT_EQ(line("#4 join"), "#4 join   a, b, c  done");
  EXPECT_TRUE(node->running());
}

TEST_F(graph_test, ABranchThatFailsForGoodStopsItsSiblingsAndDeadLetters) {
  auto node = start_node("g-4");
  publish("x1", json{{"doc", "x"},
                     {"broken", "b"},
                     {"sleep", json{{"a", 0}, {"c", 30}}}});
  ASSERT_TRUE(ended("x1", 20s)); // not after c's 30 s: c was stopped
  EXPECT_EQ(text("select state from jobs where job_id = 'x1'"),
            "dead_lettered");
  EXPECT_EQ(text("select stage || ' ' || last_error from dead_letters where "
                 "job_id = 'x1'"),
            "b exit_code: exit 1: broken for good");
  EXPECT_EQ(count("select count(*) from stage_checkpoints where job_id = "
                  "'x1' and stage = 'c'"),
            0);
  EXPECT_EQ(runs("c", "x1"), 1);
  EXPECT_EQ(attempts("x1", "join", true) + attempts("x1", "join", false), 0);
  // The stopped sibling leaves no stage process behind.
  EXPECT_TRUE(eventually(
      [&] {
        child_process ps{{"pgrep", "-f", "branch.sh c"},
                         servers_->dir() + "/pgrep.log"};
        return ps.wait(10s) == 1; // no process matched
      },
      10s, 200ms));
  EXPECT_TRUE(node->running());
}

TEST_F(graph_test, ANodeKilledMidGraphLeavesOnlyTheUnfinishedBranch) {
  auto n1 = start_node("g-2");
  auto n2 = start_node("g-3");
  publish("k1",
          json{{"doc", "k"}, {"sleep", json{{"a", 0}, {"b", 0}, {"c", 5}}}});
  // a and b have checkpoints; c runs.
  ASSERT_TRUE(eventually(
      [&] {
        return count("select count(*) from stage_checkpoints where job_id = "
                     "'k1' and stage in ('a', 'b')") == 2 &&
               runs("c", "k1") == 1;
      },
      30s, 50ms));
  auto owner = text("select split_part(lease_owner, '#', 1) from jobs where "
                    "job_id = 'k1'");
  ASSERT_TRUE(owner == "g-2" || owner == "g-3") << owner;
  (owner == "g-2" ? n1 : n2)->signal(SIGKILL);
  ASSERT_TRUE(ended("k1", 90s));
  ASSERT_EQ(text("select state from jobs where job_id = 'k1'"), "succeeded")
      << text("select last_error from jobs where job_id = 'k1'");
  // The survivor ran c again and nothing else: a and b had checkpoints.
  EXPECT_EQ(runs("a", "k1"), 1);
  EXPECT_EQ(runs("b", "k1"), 1);
  EXPECT_EQ(runs("c", "k1"), 2);
  EXPECT_EQ(attempts("k1", "join", true), 1);
  auto result = json::parse(text("select result::text from jobs where "
                                 "job_id = 'k1'"));
  EXPECT_EQ(result["joined"], json::array({"k-a", "k-b", "k-c"}));
  auto survivor = owner == "g-2" ? "g-3" : "g-2";
  EXPECT_EQ(text("select split_part(lease_owner, '#', 1) from jobs where "
                 "job_id = 'k1'"),
            survivor);
  EXPECT_EQ(text("select node from job_events where job_id = 'k1' and type "
                 "= 'job.succeeded'"),
            survivor);
  EXPECT_TRUE((owner == "g-2" ? n2 : n1)->running());
}

} // namespace
} // namespace troupe::test
