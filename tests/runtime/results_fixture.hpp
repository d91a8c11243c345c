#pragma once

// The results suite's servers and node (tests/runtime/results_test.cpp,
// reports_test.cpp): PostgreSQL, a nats-server with the example's roles,
// one node running small pipelines; clients connect as the role they play.

#include <csignal>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "role_servers.hpp"

namespace troupe::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

/// Accepts OTLP/HTTP JSON posts on /v1/traces and keeps their spans.
class otlp_receiver {
public:
  otlp_receiver() {
    server_.Post("/v1/traces",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   auto j = json::parse(req.body, nullptr, false);
                   std::lock_guard<std::mutex> g{mtx_};
                   if (j.is_object())
                     for (auto& rs : j["resourceSpans"])
                       for (auto& ss : rs["scopeSpans"])
                         for (auto& sp : ss["spans"])
                           spans_.push_back(sp);
                   res.set_content("{}", "application/json");
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread{[this] { server_.listen_after_bind(); }};
  }
  ~otlp_receiver() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<json> spans() {
    std::lock_guard<std::mutex> g{mtx_};
    return spans_;
  }

private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mtx_;
  std::vector<json> spans_;
};

class results_test : public ::testing::Test {
public:
  void SetUp() override {
    if (!set_up_) {
      set_up_ = true;
      setup();
      setup_failed_ = HasFatalFailure();
    }
    ASSERT_FALSE(setup_failed_) << "the suite's set-up failed";
  }

  static void setup() {
    servers_ = new role_servers();
    // A stranger bound to tenant "globex", like the example's acme.
    auto err =
        servers_->start({{"globex", "globex-Pw-1",
                          R"({ publish = ["troupe.api.v1.tenant.globex.>"],
               subscribe = ["_INBOX.globex.>"] })"}});
    ASSERT_TRUE(err.empty()) << err;
    dir_ = servers_->dir();
    // `echo` returns its whole stage input: the result depends on the
    // job's id and payload, so it cannot be confused with another job's.
    auto cfg = servers_->node_config("res-node", R"(
[pipelines.echo]
stages = [ { name = "back", kind = "exec", command = ["cat"] } ]

[pipelines.big]
stages = [ { name = "pad", kind = "exec", command = ["sh", "-c",
  "cat >/dev/null; printf '{\"pad\":\"'; head -c 5000 /dev/zero | tr '\\0' x; printf '\"}'"] } ]

[pipelines.slow]
stages = [ { name = "nap", kind = "sleep", duration = "1500ms" } ]

[pipelines.broken]
stages = [ { name = "boom", kind = "fault", fail_first = 5, permanent = true } ]

[pipelines.report]
stages = [ { name = "steps", kind = "exec", command = ["sh", "-c",
  "cat >/dev/null; for i in 1 2 3 4 5 6 7 8 9; do echo \"{\\\"progress\\\":0.$i,\\\"message\\\":\\\"step $i\\\"}\" >&3; sleep 0.1; done; echo '{\"progress\":1,\"message\":\"done\"}' >&3; echo '{\"n\":10}'"] } ]

[pipelines.resume]
stages = [ { name = "long", kind = "exec", heartbeat_timeout = "1s", timeout = "60s",
  retry = { max_attempts = 2, initial = "100ms" }, command = ["sh", "-c",
  "in=$(cat); case \"$in\" in *heartbeat_details*) echo '{\"resumed\":true}';; *) echo '{\"details\":{\"offset\":42}}' >&3; exec sleep 30;; esac"] } ]

[pipelines.trace]
stages = [ { name = "show", kind = "exec", command = ["sh", "-c",
  "cat >/dev/null; printf '{\"tp\":\"%s\",\"ts\":\"%s\"}' \"$TRACEPARENT\" \"$TRACESTATE\""] } ]

[pipelines.halfway]
stages = [ { name = "chunks", kind = "exec", timeout = "60s", command = ["sh", "-c",
  "cat >/dev/null; echo '{\"progress\":0.4,\"message\":\"chunk 4\"}' >&3; exec sleep 60"] } ]

[pipelines.term]
stages = [ { name = "stubborn", kind = "exec", timeout = "1s", cancel_grace = "10s",
  retry = { max_attempts = 1 }, env = { OUT = "@DIR@" }, command = ["sh", "-c",
  "trap 'echo got-term > $OUT/term.log; exit 0' TERM; cat >/dev/null; while true; do sleep 0.1; done"] } ]
)");
    cfg.replace(cfg.find("@DIR@"), 5, dir_);
    // Results over 2 KiB are left out of events.
    cfg.replace(cfg.find("[nats]"), 0, "event_result_max_bytes = 2048\n\n");
    // JSON logs with every event: the trace test reads them.
    cfg.replace(cfg.find("[nats]"), 0,
                "log_level = \"debug\"\nlog_format = \"json\"\n\n");
    // A small OTLP/HTTP receiver stands in for a collector.
    collector_ = new otlp_receiver();
    cfg.replace(cfg.find("[nats]"), 0,
                "otlp_endpoint = \"http://127.0.0.1:" +
                    std::to_string(collector_->port()) + "\"\n\n");
    write_file(dir_ + "/node.toml", cfg);
    node_ = new child_process(
        {TROUPE_BINARY, "node", "--config", dir_ + "/node.toml"},
        dir_ + "/node.log");
    ASSERT_TRUE(node_->wait_for_output(": ready", 60s)) << node_->output();
  }

  static void TearDownTestSuite() {
    if (node_) {
      node_->signal(SIGTERM);
      node_->wait(30s);
      delete node_;
      node_ = nullptr;
    }
    delete servers_;
    delete collector_;
    collector_ = nullptr;
  }

  /// A client as `user`, with replies under `inbox`.
  static std::shared_ptr<nats_client> as(const std::string& user,
                                         const std::string& pw,
                                         const std::string& inbox = "_INBOX") {
    auto c = servers_->connect_as(user, pw, inbox);
    EXPECT_TRUE(c) << describe(c.error());
    return c ? *c : nullptr;
  }

  static std::shared_ptr<nats_client> publisher() {
    return as("publisher", role_servers::publisher_pw);
  }
  static std::shared_ptr<nats_client> acme() {
    return as("acme", role_servers::acme_pw, "_INBOX.acme");
  }
  static std::shared_ptr<nats_client> globex() {
    return as("globex", "globex-Pw-1", "_INBOX.globex");
  }

  /// One request; the reply as JSON (null on no reply).
  static json ask(nats_client& c, const std::string& subject, const json& body,
                  std::chrono::milliseconds wait = 20s) {
    auto r = c.request(subject, body.dump(), wait.count());
    if (!r)
      return nullptr;
    return json::parse(*r, nullptr, false);
  }

  static std::string submit(nats_client& c, const std::string& subject,
                            const json& body) {
    auto r = ask(c, subject, body);
    EXPECT_TRUE(r.is_object() && r.value("ok", false)) << r.dump();
    return r.is_object() ? r.value("job_id", "") : "";
  }

  static std::string row(const std::string& sql, const std::string& id) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    auto r = n.exec_params(sql, id);
    return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
  }

  static inline bool set_up_ = false;
  static inline bool setup_failed_ = false;
  static inline std::string dir_;
  static inline role_servers* servers_ = nullptr;
  static inline child_process* node_ = nullptr;
  static inline otlp_receiver* collector_ = nullptr;
};

} // namespace troupe::test
