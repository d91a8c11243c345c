// The least-privileged, most careless clients against a real cluster: a
// nats-server with config/nats-server.example.conf's roles, PostgreSQL and
// two nodes. Every case is judged by the system of record (rows in
// PostgreSQL, messages left in the stream), and afterwards the nodes still
// run and ordinary jobs still finish.
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "role_servers.hpp"
#include "runtime/client/admin_client.hpp"
#include "runtime/nats/nats_subscription.hpp"
#include "tests/support/eventually.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const char* billing_pw = "billing-Pw-3318";

/// 200,000 levels of `[` and `]`: 400 KB, well under NATS's 1 MiB.
std::string deep_json() {
  return std::string(200'000, '[') + std::string(200'000, ']');
}

class adversarial_test : public ::testing::Test {
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
    // A publisher allowed one pipeline only.
    auto err = servers_->start(
        {{"billing", billing_pw,
          R"({ publish = ["troupe.jobs.billing", "troupe.api.v1.submit"],
               subscribe = ["_INBOX.>"] })"}});
    ASSERT_TRUE(err.empty()) << err;
    auto dir = servers_->dir();
    // A `nobody` pipeline's messages stay in the stream (no node runs it
    // and the sweeper is off): they show whether anything purged it.
    auto pipelines = R"(
[pipelines.work]
stages = [ { name = "only", kind = "noop" } ]

[pipelines.payroll]
stages = [ { name = "pay", kind = "sleep", duration = "6s" } ]

[pipelines.billing]
stages = [ { name = "charge", kind = "exec", command = ["/bin/sh", "-c", "cat >> )" +
                     dir + R"(/billing.log; echo '{}'"] } ]

[pipelines.nulout]
stages = [ { name = "emit", kind = "exec", command = ["/bin/sh", "-c", "printf '{\"a\":\"x\\\\u0000y\"}'"], retry = { max_attempts = 3, initial = "10ms" } } ]
)";
    for (auto id : {"adv-1", "adv-2"}) {
      auto cfg = servers_->node_config(id, pipelines);
      // A short duplicate window, so that a test can publish a key again
      // past it (within it, JetStream itself drops the repeat).
      cfg.replace(cfg.find("[nats]\n"), 7,
                  "[nats]\nunrouted_sweep = \"0s\"\nduplicate_window = "
                  "\"1s\"\n");
      write_file(dir + "/" + id + ".toml", cfg);
      nodes_.push_back(new child_process(
          {TROUPE_BINARY, "node", "--config", dir + "/" + id + ".toml"},
          dir + "/" + id + ".log"));
    }
    for (auto* n : nodes_)
      ASSERT_TRUE(n->wait_for_output(": ready", 60s)) << n->output();
  }

  static void TearDownTestSuite() {
    for (auto* n : nodes_) {
      n->signal(SIGTERM);
      n->wait(30s);
      delete n;
    }
    nodes_.clear();
    delete servers_;
  }

  static std::shared_ptr<nats_client> as(const std::string& user) {
    auto pw = user == "publisher" ? role_servers::publisher_pw
              : user == "viewer"  ? role_servers::viewer_pw
              : user == "admin"   ? role_servers::admin_pw
              : user == "node"    ? role_servers::node_pw
                                  : billing_pw;
    auto c = servers_->connect_as(user, pw);
    EXPECT_TRUE(c) << describe(c.error());
    return c ? *c : nullptr;
  }

  static std::int64_t count(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    return n.exec1(sql)[0].as<std::int64_t>();
  }

  static std::string text(const std::string& sql) {
    pqxx::connection c{servers_->pg_url()};
    pqxx::nontransaction n{c};
    auto r = n.exec(sql);
    return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
  }

  /// Polls `sql` (a count) until it equals `want` or 30 s pass.
  static std::int64_t await_count(const std::string& sql, std::int64_t want) {
    std::int64_t n = -1;
    test::eventually([&] { return (n = count(sql)) == want; },
                     std::chrono::milliseconds{30000},
                     std::chrono::milliseconds{100});
    return n;
  }

  /// Publishes `body` on `subject` with headers, through JetStream.
  static natsStatus
  js_publish(const std::shared_ptr<nats_client>& c, const std::string& subject,
             const std::string& body,
             std::vector<std::pair<const char*, std::string>> headers = {}) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, body.data(),
                   static_cast<int>(body.size()));
    for (auto& [k, v] : headers)
      natsMsgHeader_Set(m, k, v.c_str());
    jsPubAck* ack = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    auto s = js_PublishMsg(&ack, c->js(), m, nullptr, &jerr);
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(m);
    return s;
  }

  /// A submission through the API as `user`; the reply document.
  static json submit(const std::string& user, const json& body) {
    auto c = as(user);
    auto r = c->request("troupe.api.v1.submit", body.dump(), 5000);
    EXPECT_TRUE(r) << describe(r.error());
    return r ? json::parse(*r, nullptr, false) : json{};
  }

  /// Messages of a pipeline's consumer not yet acked or not yet delivered.
  static std::int64_t unfinished(const std::string& pipeline) {
    auto c = as("node");
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    auto name = "troupe_" + pipeline;
    if (js_GetConsumerInfo(&ci, c->js(), "TROUPE_JOBS", name.c_str(), nullptr,
                           &jerr) != NATS_OK)
      return -1;
    auto n = static_cast<std::int64_t>(ci->NumPending + ci->NumAckPending);
    jsConsumerInfo_Destroy(ci);
    return n;
  }

  static std::int64_t await_drained(const std::string& pipeline) {
    std::int64_t n = -1;
    test::eventually([&] { return (n = unfinished(pipeline)) == 0; },
                     std::chrono::milliseconds{30000},
                     std::chrono::milliseconds{100});
    return n;
  }

  static std::uint64_t stream_messages() {
    auto c = as("node");
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&si, c->js(), "TROUPE_JOBS", nullptr, &jerr) !=
        NATS_OK)
      return 0;
    auto n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }

  /// Both nodes still run, and an ordinary job submitted now succeeds.
  static void expect_cluster_healthy(const std::string& key) {
    for (auto* n : nodes_)
      EXPECT_TRUE(n->running()) << n->output();
    auto r = submit("publisher",
                    {{"pipeline", "work"}, {"key", key}, {"payload", 1}});
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    EXPECT_EQ(await_count("select count(*) from jobs where job_id = '" + key +
                              "' and state = 'succeeded'",
                          1),
              1);
  }

  static inline bool set_up_ = false;
  static inline bool setup_failed_ = false;
  static inline role_servers* servers_ = nullptr;
  static inline std::vector<child_process*> nodes_;
};

} // namespace

// Hole 1: NATS checks a publish against the subject only, never against the
// reply-to a client names. A viewer's read request or a publisher's
// JetStream publish could name a control subject (every node drained and
// exited) or the JetStream purge API (the node's rights purged the stream).
TEST_F(adversarial_test, ForgedReplySubjectsChangeNothing) {
  auto publisher = as("publisher");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(js_publish(publisher, "troupe.jobs.nobody", R"({"payload":1})",
                         {{"Nats-Msg-Id", "held-" + std::to_string(i)}}),
              NATS_OK);
  auto held = stream_messages();
  ASSERT_GE(held, 3u);
  auto viewer = as("viewer");
  for (auto reply :
       {"troupe.admin.all.control.drain", "$JS.API.STREAM.PURGE.TROUPE_JOBS"})
    ASSERT_EQ(natsConnection_PublishRequestString(
                  viewer->conn(), "troupe.admin.all.read.nodes", reply, ""),
              NATS_OK);
  // JetStream itself sends the publish ack to the reply-to.
  std::string body = R"({"payload":1})";
  ASSERT_EQ(natsConnection_PublishRequest(publisher->conn(), "troupe.jobs.work",
                                          "troupe.admin.all.control.drain",
                                          body.data(),
                                          static_cast<int>(body.size())),
            NATS_OK);
  ASSERT_EQ(natsConnection_PublishRequestString(
                publisher->conn(), "troupe.api.v1.submit",
                "troupe.admin.all.control.drain",
                R"({"pipeline":"work","payload":2})"),
            NATS_OK);
  natsConnection_Flush(viewer->conn());
  natsConnection_Flush(publisher->conn());
  std::this_thread::sleep_for(2s); // drain_grace is 1 s: a drain would show
  for (auto* n : nodes_)
    EXPECT_EQ(n->output().find("draining"), std::string::npos) << n->output();
  EXPECT_GE(stream_messages(), 3u);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'held-%'"), 0);
  expect_cluster_healthy("after-forged-replies");
}

// Hole 1: a control verb acts only on a well-formed body (a JetStream
// publish ack is not a drain request).
TEST_F(adversarial_test, AControlVerbRefusesABodyItDoesNotKnow) {
  auto admin = as("admin");
  auto r = admin_request(*admin, "troupe.admin.adv-1.control.drain",
                         json{{"stream", "TROUPE_JOBS"}, {"seq", 7}}, 3000ms);
  EXPECT_EQ(r["error"]["code"], "invalid_request") << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("unknown field"),
            std::string::npos);
  // A viewer's huge number where an integer belongs (undefined behaviour
  // when cast) is refused.
  auto viewer = as("viewer");
  auto jobs = admin_request(*viewer, "troupe.admin.any.read.jobs",
                            json::parse(R"({"limit":1e300})"), 3000ms);
  EXPECT_EQ(jobs["error"]["code"], "invalid_request") << jobs.dump();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(nodes_[0]->output().find("draining"), std::string::npos);
  expect_cluster_healthy("after-bad-control-body");
}

// Hole 2: ~200k levels of nesting overflowed the stack of whichever node
// read it; unacked, the message crashed every node in turn.
TEST_F(adversarial_test, DeepJsonIsRefusedEverywhereAndNoNodeFalls) {
  auto deep = deep_json();
  auto r =
      submit("publisher", json::parse(R"({"pipeline":"work","payload":0})"));
  ASSERT_TRUE(r.value("ok", false));
  auto api =
      as("publisher")
          ->request("troupe.api.v1.submit",
                    R"({"pipeline":"work","payload":)" + deep + "}", 5000);
  ASSERT_TRUE(api);
  EXPECT_EQ(json::parse(*api)["error"]["code"], "nesting_too_deep") << *api;
  ASSERT_EQ(js_publish(as("publisher"), "troupe.jobs.work",
                       R"({"payload":)" + deep + "}",
                       {{"Nats-Msg-Id", "deep-1"}}),
            NATS_OK);
  auto viewer = as("viewer");
  auto adm = viewer->request("troupe.admin.any.read.jobs", deep, 5000);
  ASSERT_TRUE(adm);
  EXPECT_EQ(json::parse(*adm)["error"]["code"], "nesting_too_deep") << *adm;
  EXPECT_EQ(await_count("select count(*) from jobs where job_id = 'deep-1' "
                        "and state = 'dead_lettered' and last_error like "
                        "'nesting_too_deep%'",
                        1),
            1);
  EXPECT_EQ(await_drained("work"), 0);
  expect_cluster_healthy("after-deep-json");
}

// Hole 4: PostgreSQL refuses U+0000, and every write of such a job failed:
// the message looped on a 1 s nak forever. Each is dead-lettered once, as
// storable text, and leaves the stream.
TEST_F(adversarial_test, PoisonMessagesAreDeadLetteredOnceNotLooped) {
  auto pub = as("publisher");
  ASSERT_EQ(js_publish(pub, "troupe.jobs.work",
                       R"({"payload":{"a":"x\u0000"}})",
                       {{"Nats-Msg-Id", "nul-payload"}}),
            NATS_OK);
  ASSERT_EQ(js_publish(pub, "troupe.jobs.work",
                       R"({"payload":1,"tenant":"t\u0000"})",
                       {{"Nats-Msg-Id", "nul-tenant"}}),
            NATS_OK);
  ASSERT_EQ(js_publish(pub, "troupe.jobs.work", std::string{"\x00\xff\x01", 3},
                       {{"Nats-Msg-Id", "binary-body"}}),
            NATS_OK);
  ASSERT_EQ(js_publish(pub, "troupe.jobs.work", R"({"payload":1})",
                       {{"Nats-Msg-Id", std::string(300, 'k')}}),
            NATS_OK);
  // Dead-lettered under their keys; the over-long key under an id of its
  // own, with the key in its payload.
  EXPECT_EQ(await_count("select count(*) from jobs where state = "
                        "'dead_lettered' and job_id in ('nul-payload', "
                        "'nul-tenant', 'binary-body') and payload ? 'raw'",
                        3),
            3);
  EXPECT_EQ(await_count("select count(*) from jobs where state = "
                        "'dead_lettered' and job_id like 'invalid-%' and "
                        "length(payload->>'key') = 300 and last_error like "
                        "'key_too_long%'",
                        1),
            1);
  EXPECT_EQ(await_drained("work"), 0);
  auto api = submit("publisher",
                    json::parse(R"({"pipeline":"work","payload":"a\u0000"})"));
  EXPECT_EQ(api["error"]["code"], "invalid_payload") << api.dump();
  // A stage whose output holds U+0000 fails for good, once.
  ASSERT_TRUE(
      submit("publisher",
             {{"pipeline", "nulout"}, {"key", "nul-output"}, {"payload", 1}})
          .value("ok", false));
  EXPECT_EQ(await_count("select count(*) from jobs where job_id = "
                        "'nul-output' and state = 'dead_lettered'",
                        1),
            1);
  EXPECT_EQ(count("select count(*) from job_attempts where job_id = "
                  "'nul-output' and error_code = 'invalid_output'"),
            1);
  EXPECT_EQ(await_drained("nulout"), 0);
  expect_cluster_healthy("after-poison");
}

// Hole 5: a publisher allowed only `troupe.jobs.billing` ran billing's
// stages on a payroll job and marked it done, dead-lettered it with junk,
// or hijacked it with a forged replay header.
TEST_F(adversarial_test, AJobBelongsToItsPipelineWhateverAPublisherNames) {
  ASSERT_TRUE(submit("publisher", {{"pipeline", "payroll"},
                                   {"key", "pay-1"},
                                   {"payload", {{"salary", 1}}}})
                  .value("ok", false));
  ASSERT_EQ(await_count("select count(*) from jobs where job_id = 'pay-1' and "
                        "state = 'running'",
                        1),
            1);
  // Within the duplicate window the API calls a key of another pipeline's
  // job a conflict (JetStream would drop the publish as a duplicate).
  auto taken = submit(
      "billing", {{"pipeline", "billing"}, {"key", "pay-1"}, {"payload", 1}});
  EXPECT_EQ(taken["error"]["code"], "conflict") << taken.dump();
  std::this_thread::sleep_for(1500ms); // past the duplicate window
  auto billing = as("billing");
  auto good = std::string{R"({"payload":{"amount":5}})"};
  ASSERT_EQ(js_publish(billing, "troupe.jobs.billing", good,
                       {{"Nats-Msg-Id", "pay-1"}}),
            NATS_OK);
  ASSERT_EQ(
      js_publish(billing, "troupe.jobs.billing", good,
                 {{"Nats-Msg-Id", "pay-1#2"}, {"Troupe-Job-Id", "pay-1"}}),
      NATS_OK);
  ASSERT_EQ(
      js_publish(billing, "troupe.jobs.billing", "junk",
                 {{"Nats-Msg-Id", "pay-1-junk"}, {"Troupe-Job-Id", "pay-1"}}),
      NATS_OK);
  ASSERT_EQ(js_publish(billing, "troupe.jobs.billing", "junk",
                       {{"Nats-Msg-Id", "pay-1x"}}),
            NATS_OK);
  std::this_thread::sleep_for(1500ms); // the same key again, past the window
  ASSERT_EQ(js_publish(billing, "troupe.jobs.billing", "junk",
                       {{"Nats-Msg-Id", "pay-1"}}),
            NATS_OK);
  ASSERT_EQ(js_publish(billing, "troupe.jobs.billing", good,
                       {{"Nats-Msg-Id", "has#hash"}}),
            NATS_OK);
  auto hashed = submit(
      "billing", {{"pipeline", "billing"}, {"key", "api#2"}, {"payload", 1}});
  EXPECT_EQ(hashed["error"]["code"], "invalid_payload") << hashed.dump();
  EXPECT_EQ(await_drained("billing"), 0);
  EXPECT_EQ(await_count("select count(*) from jobs where job_id = 'pay-1' and "
                        "state = 'succeeded'",
                        1),
            1);
  EXPECT_EQ(text("select pipeline || ':' || epoch || ':' || life || ':' || "
                 "payload::text from jobs where job_id = 'pay-1'"),
            R"(payroll:1:1:{"salary": 1})");
  EXPECT_EQ(read_file(servers_->dir() + "/billing.log").find("pay-1"),
            std::string::npos);
  EXPECT_EQ(count("select count(*) from jobs where job_id = 'has#hash'"), 0);
  // Junk is recorded (under its key, or an id of its own when the key is
  // malformed or taken), never over the live job.
  EXPECT_EQ(count("select count(*) from jobs where state = 'dead_lettered' "
                  "and payload->>'key' in ('pay-1', 'pay-1x', 'has#hash')"),
            4);
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'invalid-%' "
                  "and payload->>'key' = 'pay-1'"),
            2);
  expect_cluster_healthy("after-pipeline-binding");
}

// A key is free text, and it became the last part of the event subject as
// it was: a space made the node's publish a protocol error, and NATS closed
// the node's whole connection (found by the dashboard's browser test).
TEST_F(adversarial_test, AKeyNatsCannotNameIsAJobAndBreaksNoConnection) {
  auto watcher = as("node");
  std::atomic<int> seen{0};
  auto sub = nats_subscription::open(
      *watcher, "troupe.events.work.>", [&](nats_msg m) {
        auto ev = json::parse(std::string{m.data()}, nullptr, false);
        if (ev.is_object() && ev.value("job_id", "") == "a b\t*>..c." &&
            ev.value("type", "") == "job.succeeded" &&
            std::string{m.subject()} == "troupe.events.work.a_b___._c_")
          ++seen;
      });
  ASSERT_TRUE(sub);
  watcher->flush(1000);
  for (auto* n : nodes_)
    ASSERT_EQ(n->output().find("disconnected"), std::string::npos);
  auto r =
      submit("publisher",
             {{"pipeline", "work"}, {"key", "a b\t*>..c."}, {"payload", 1}});
  ASSERT_TRUE(r.value("ok", false)) << r.dump();
  EXPECT_EQ(await_count("select count(*) from jobs where job_id = "
                        "E'a b\\t*>..c.' and state = 'succeeded'",
                        1),
            1);
  EXPECT_TRUE(test::eventually([&] { return seen.load() == 1; }));
  for (auto* n : nodes_)
    EXPECT_EQ(n->output().find("disconnected"), std::string::npos)
        << n->output();
  expect_cluster_healthy("after-subject-tail");
}
