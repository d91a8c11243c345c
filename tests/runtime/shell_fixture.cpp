#include "tests/runtime/shell_fixture.hpp"

#include <sys/stat.h>

#include <csignal>
#include <sstream>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "runtime/nats/nats_client.hpp"

namespace troupe::test {

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Fails permanently until the operator "fixes" it by creating the file.
const char* fixable_script = R"SH(#!/bin/sh
cat >/dev/null
if [ -e "$FIXED" ]; then echo '{"fixed":true}'; exit 0; fi
echo "the stage is broken until $FIXED exists" >&2
exit 1
)SH";

} // namespace

test_servers* shell_test::servers_ = nullptr;
std::string shell_test::dir_;
std::vector<std::unique_ptr<child_process>> shell_test::nodes_;

void shell_test::SetUp() {
  if (!set_up_) {
    set_up_ = true;
    setup();
    setup_failed_ = HasFatalFailure();
  }
  ASSERT_FALSE(setup_failed_) << "the suite's set-up failed";
}

void shell_test::setup() {
  servers_ = new test_servers();
  dir_ = servers_->dir();
  write_file(dir_ + "/fixable.sh", fixable_script);
  chmod((dir_ + "/fixable.sh").c_str(), 0755);
  for (auto id : {"sh-a", "sh-b"}) {
    write_file(dir_ + "/" + id + ".toml", config_text(id));
    nodes_.push_back(std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 dir_ + "/" + id + ".toml"},
        dir_ + "/" + id + ".log"));
  }
  for (auto& n : nodes_)
    if (!n->wait_for_output("ready", 60s))
      FAIL() << n->output();
  // Each node sees the other before the tests count on fan-out.
  nats_connect_options o;
  o.urls = servers_->nats_url();
  auto c = nats_client::connect(o);
  ASSERT_TRUE(c);
  for (int i = 0; i < 200; ++i) {
    int seeing_both = 0;
    for (auto id : {"sh-a", "sh-b"}) {
      auto r = (*c)->request(std::string{"troupe.admin."} + id + ".read.nodes",
                             "", 2000);
      auto j = r ? json::parse(*r, nullptr, false) : json{};
      seeing_both += !j.is_discarded() && j.is_object() &&
                     j["result"].is_array() && j["result"].size() == 2;
    }
    if (seeing_both == 2)
      break;
    std::this_thread::sleep_for(100ms);
  }
}

void shell_test::TearDownTestSuite() {
  for (auto& n : nodes_)
    n->signal(SIGTERM);
  for (auto& n : nodes_)
    n->wait(30s);
  nodes_.clear();
  delete servers_;
  servers_ = nullptr;
}

std::string shell_test::config_text(const std::string& id) {
  return R"([node]
id = ")" +
         id +
         R"("
http = "127.0.0.1:0"
drain_grace = "2s"

[nats]
url = ")" +
         servers_->nats_url() +
         R"("
ack_wait = "5s"

[postgres]
url = ")" +
         servers_->pg_url() +
         R"("

[pipelines.fixable]
stages = [
  { name = "prepare", kind = "noop" },
  { name = "work", kind = "exec", command = [")" +
         dir_ + R"(/fixable.sh"], env = { FIXED = ")" + dir_ +
         R"(/fixed" } },
]

[pipelines.waiting]
stages = [
  { name = "flaky", kind = "fault", fail_first = 1,
    retry = { max_attempts = 3, initial = "10m", max = "10m", jitter = "none" } },
]

[pipelines.gated]
# Appends each input to gated.runs, so a test can tell whether it ran.
stages = [ { name = "only", kind = "exec", command = ["/bin/sh", "-c",
  "cat >> ')" +
         dir_ + R"(/gated.runs'; echo; echo null"] } ]

[pipelines.long]
stages = [ { name = "nap", kind = "sleep", duration = "4s" } ]

[pipelines.listed]
stages = [ { name = "only", kind = "noop" } ]

[pipelines.tidied]
stages = [ { name = "only", kind = "noop" } ]
)";
}

std::pair<int, std::vector<json>>
shell_test::shell(const std::string& cmds, std::vector<std::string> extra) {
  static int n = 0;
  std::vector<std::string> argv{
      TROUPE_BINARY, "shell", "--nats", servers_->nats_url(),
      "--json",      "-c",    cmds};
  argv.insert(argv.end(), extra.begin(), extra.end());
  child_process sh{argv, dir_ + "/shell-" + std::to_string(++n) + ".log"};
  auto rc = sh.wait(60s);
  std::vector<json> docs;
  std::istringstream lines{sh.output()};
  for (std::string line; std::getline(lines, line);) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded())
      docs.push_back(std::move(j));
  }
  return {rc, docs};
}

json shell_test::ok(const std::string& cmd) {
  auto [rc, docs] = shell(cmd);
  EXPECT_EQ(rc, 0) << cmd;
  EXPECT_EQ(docs.size(), 1u) << cmd;
  if (docs.empty())
    return json::object();
  EXPECT_TRUE(docs[0].value("ok", false)) << docs[0].dump();
  return docs[0];
}

std::string shell_test::submit(const std::string& pipeline, json payload,
                               const std::string& key) {
  nats_connect_options o;
  o.urls = servers_->nats_url();
  auto c = nats_client::connect(o);
  EXPECT_TRUE(c);
  json body{{"pipeline", pipeline}, {"payload", payload}};
  if (!key.empty())
    body["key"] = key;
  auto r = (*c)->request("troupe.api.v1.submit", body.dump(), 5000);
  EXPECT_TRUE(r);
  auto j = json::parse(*r, nullptr, false);
  EXPECT_TRUE(j.value("ok", false)) << *r;
  return j.value("job_id", "");
}

std::string shell_test::state_of(const std::string& job_id) {
  pqxx::connection c{servers_->pg_url()};
  pqxx::nontransaction n{c};
  auto r = n.exec_params("select state from jobs where job_id = $1", job_id);
  return r.empty() ? "" : r[0][0].c_str();
}

bool shell_test::wait_state(const std::string& job_id, const std::string& state,
                            std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (state_of(job_id) == state)
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::int64_t shell_test::count(const std::string& sql) {
  pqxx::connection c{servers_->pg_url()};
  pqxx::nontransaction n{c};
  return n.exec1(sql)[0].as<std::int64_t>();
}

} // namespace troupe::test
