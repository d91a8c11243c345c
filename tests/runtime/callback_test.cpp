// Callback stages through real servers with the example's roles: the job
// waits as a row (its message acked, no node holding anything), survives
// a node restart, and an outside service (the publisher role, a separate
// NATS connection) completes it with the token from the callback request;
// the next stage gets the output. Wrong, malformed, late and foreign
// completions are refused; a wait that times out retries under a new token.
#include <csignal>
#include <memory>
#include <mutex>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "role_servers.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// Callback requests seen on a subject, in order.
class request_inbox {
public:
  request_inbox(nats_client& c, const std::string& subject) {
    auto s = nats_subscription::open(c, subject, [this](nats_msg m) {
      std::lock_guard<std::mutex> g{mtx_};
      seen_.push_back(json::parse(m.data(), nullptr, false));
    });
    EXPECT_TRUE(s) << describe(s.error());
    if (s)
      sub_ = std::move(*s);
  }

  /// The `n`th request (1-based), once it came.
  json nth(std::size_t n) {
    json out;
    eventually(
        [&] {
          std::lock_guard<std::mutex> g{mtx_};
          if (seen_.size() < n)
            return false;
          out = seen_[n - 1];
          return true;
        },
        30s);
    return out;
  }

private:
  std::mutex mtx_;
  std::vector<json> seen_;
  nats_subscription sub_;
};

class callback_test : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    servers_ = new role_servers();
    auto err =
        servers_->start({{"globex", "globex-Pw-1",
                          R"({ publish = ["troupe.api.v1.tenant.globex.>"],
               subscribe = ["_INBOX.globex.>"] })"}});
    ASSERT_TRUE(err.empty()) << err;
    write_file(servers_->dir() + "/node.toml",
               servers_->node_config("cb-node", R"(
[pipelines.approval]
stages = [
  { name = "approve", kind = "callback", timeout = "60s" },
  { name = "after", kind = "exec", command = ["cat"] },
]

[pipelines.hurry]
stages = [
  { name = "approve", kind = "callback", subject = "troupe.callbacks.fast",
    timeout = "1s", retry = { max_attempts = 2, initial = "100ms" } },
]
)"));
  }

  static void TearDownTestSuite() {
    delete servers_;
    servers_ = nullptr;
  }

  void SetUp() override { node_ = start_node(); }

  void TearDown() override {
    if (node_) {
      node_->signal(SIGTERM);
      EXPECT_EQ(node_->wait(30s), 0) << node_->output();
    }
  }

  static std::unique_ptr<child_process> start_node() {
    // A log per start: waiting for "ready" must not find an earlier one.
    static int started = 0;
    auto n = std::make_unique<child_process>(
        std::vector<std::string>{TROUPE_BINARY, "node", "--config",
                                 servers_->dir() + "/node.toml"},
        servers_->dir() + "/node-" + std::to_string(++started) + ".log");
    EXPECT_TRUE(n->wait_for_output(": ready", 60s)) << n->output();
    return n;
  }

  static std::shared_ptr<nats_client> as(const std::string& user,
                                         const std::string& pw,
                                         const std::string& inbox = "_INBOX") {
    auto c = servers_->connect_as(user, pw, inbox);
    EXPECT_TRUE(c) << describe(c.error());
    return c ? *c : nullptr;
  }

  static json ask(nats_client& c, const std::string& subject,
                  const json& body) {
    auto r = c.request(subject, body.dump(), 20000);
    return r ? json::parse(*r, nullptr, false) : json{};
  }

  static std::string row(const std::string& sql, const std::string& id) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    auto r = n.exec_params(sql, id);
    return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
  }

  static inline role_servers* servers_ = nullptr;
  std::unique_ptr<child_process> node_;
};

} // namespace

TEST_F(callback_test, AWaitOutlivesARestartAndTheOutsideOutputFlowsOn) {
  auto pub = as("publisher", role_servers::publisher_pw);
  ASSERT_TRUE(pub);
  request_inbox inbox{*pub, "troupe.callbacks.approval.approve"};
  auto sub = ask(*pub, "troupe.api.v1.submit",
                 {{"pipeline", "approval"}, {"payload", {{"amount", 120}}}});
  ASSERT_TRUE(sub.value("ok", false)) << sub;
  std::string id = sub["job_id"];
  auto req = inbox.nth(1);
  ASSERT_TRUE(req.is_object()) << "no callback request arrived";
  EXPECT_EQ(req["job_id"], id);
  EXPECT_EQ(req["input"]["payload"]["amount"], 120);
  std::string token = req["token"];
  // The wait is a row; nothing is held on the stream, the token is not
  // stored (only its hash).
  EXPECT_EQ(row("select state from jobs where job_id = $1", id), "waiting");
  EXPECT_EQ(row("select callback::text from jobs where job_id = $1", id)
                .find(token.substr(token.size() - 32)),
            std::string::npos);
  auto st = ask(*pub, "troupe.api.v1.status", {{"job_id", id}});
  EXPECT_EQ(st["job"]["state"], "waiting") << st;
  // The node goes and comes back: the wait does not care.
  node_->signal(SIGTERM);
  ASSERT_EQ(node_->wait(30s), 0) << node_->output();
  node_ = start_node();
  // Refused: a token that is not one, a wrong one, both output and error,
  // and the right token through another tenant's subject.
  auto bad = ask(*pub, "troupe.api.v1.complete", {{"token", "nope"}});
  EXPECT_EQ(bad["error"]["code"], "invalid_payload") << bad;
  auto wrong = token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  auto w = ask(*pub, "troupe.api.v1.complete", {{"token", wrong}});
  EXPECT_EQ(w["error"]["code"], "not_found") << w;
  auto both =
      ask(*pub, "troupe.api.v1.complete",
          {{"token", token}, {"output", 1}, {"error", {{"code", "x"}}}});
  EXPECT_EQ(both["error"]["code"], "invalid_payload") << both;
  auto globex = as("globex", "globex-Pw-1", "_INBOX.globex");
  auto foreign = ask(*globex, "troupe.api.v1.tenant.globex.complete",
                     {{"token", token}, {"output", {{"by", "mallory"}}}});
  EXPECT_EQ(foreign["error"]["code"], "not_found") << foreign;
  // The right one.
  json output{{"approved_by", "ada"}, {"limit", 500}};
  auto ok = ask(*pub, "troupe.api.v1.complete",
                {{"token", token}, {"output", output}});
  ASSERT_TRUE(ok.value("ok", false)) << ok;
  EXPECT_EQ(ok["job_id"], id);
  EXPECT_FALSE(ok["duplicate"].get<bool>());
  auto again = ask(*pub, "troupe.api.v1.complete",
                   {{"token", token}, {"output", {{"approved_by", "eve"}}}});
  EXPECT_TRUE(again.value("duplicate", false)) << again;
  auto done =
      ask(*pub, "troupe.api.v1.wait", {{"job_id", id}, {"timeout_ms", 30000}});
  ASSERT_EQ(done["job"]["state"], "succeeded") << done;
  // `after` (cat) saw the outside output as the callback stage's.
  EXPECT_EQ(done["job"]["result"]["previous"]["approve"], output);
  EXPECT_EQ(row("select count(*) from job_attempts where job_id = $1 and "
                "stage = 'approve' and ok",
                id),
            "1");
  // The output lives in the checkpoint now, not twice; a late retry of the
  // completion still reads as a duplicate.
  EXPECT_EQ(row("select (callback ? 'completion')::text from jobs where "
                "job_id = $1",
                id),
            "false");
  auto late =
      ask(*pub, "troupe.api.v1.complete", {{"token", token}, {"output", 1}});
  EXPECT_TRUE(late.value("duplicate", false)) << late;
}

TEST_F(callback_test, AWaitPastItsDeadlineRetriesUnderANewToken) {
  auto pub = as("publisher", role_servers::publisher_pw);
  ASSERT_TRUE(pub);
  request_inbox inbox{*pub, "troupe.callbacks.fast"};
  auto sub = ask(*pub, "troupe.api.v1.submit",
                 {{"pipeline", "hurry"}, {"payload", json::object()}});
  ASSERT_TRUE(sub.value("ok", false)) << sub;
  std::string id = sub["job_id"];
  auto first = inbox.nth(1);
  ASSERT_TRUE(first.is_object());
  // Nobody answers within 1 s: the second attempt asks again.
  auto second = inbox.nth(2);
  ASSERT_TRUE(second.is_object()) << "no second request";
  EXPECT_EQ(second["attempt"], 2);
  EXPECT_NE(second["token"], first["token"]);
  auto late = ask(*pub, "troupe.api.v1.complete",
                  {{"token", first["token"]}, {"output", 1}});
  EXPECT_EQ(late["error"]["code"], "not_found") << late;
  auto declined = ask(*pub, "troupe.api.v1.complete",
                      {{"token", second["token"]},
                       {"error",
                        {{"code", "declined"},
                         {"message", "over budget"},
                         {"retryable", false}}}});
  ASSERT_TRUE(declined.value("ok", false)) << declined;
  auto done =
      ask(*pub, "troupe.api.v1.wait", {{"job_id", id}, {"timeout_ms", 30000}});
  EXPECT_EQ(done["job"]["state"], "dead_lettered") << done;
  EXPECT_EQ(done["job"]["error"]["code"], "declined");
  EXPECT_EQ(row("select string_agg(coalesce(error_code, 'ok'), ',' order by "
                "attempt) from job_attempts where job_id = $1",
                id),
            "callback_timeout,declined");
}

TEST_F(callback_test, ACancelledWaitRefusesItsCompletion) {
  auto pub = as("publisher", role_servers::publisher_pw);
  auto admin = as("admin", role_servers::admin_pw);
  ASSERT_TRUE(pub && admin);
  request_inbox inbox{*pub, "troupe.callbacks.approval.approve"};
  auto sub = ask(*pub, "troupe.api.v1.submit",
                 {{"pipeline", "approval"}, {"payload", json::object()}});
  ASSERT_TRUE(sub.value("ok", false)) << sub;
  std::string id = sub["job_id"];
  auto req = inbox.nth(1);
  ASSERT_TRUE(req.is_object());
  auto cancel =
      ask(*admin, "troupe.admin.any.control.cancel", {{"job_id", id}});
  ASSERT_TRUE(cancel.value("ok", false)) << cancel;
  auto late = ask(*pub, "troupe.api.v1.complete",
                  {{"token", req["token"]}, {"output", 1}});
  EXPECT_EQ(late["error"]["code"], "conflict") << late;
  EXPECT_EQ(row("select state from jobs where job_id = $1", id), "cancelled");
  EXPECT_EQ(row("select count(*) from job_attempts where job_id = $1", id),
            "0");
}
