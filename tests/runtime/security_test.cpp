// Authenticated NATS with roles, and TLS, against a real nats-server
// configured from config/nats-server.example.conf's model: who may submit,
// inspect and steer, what a refusal looks like, and readable failures for
// wrong passwords and wrong certificate authorities.
#include <csignal>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>
#include <tuple>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "role_servers.hpp"
#include "runtime/cli/local_servers.hpp"
#include "runtime/client/admin_client.hpp"
#include "runtime/exec/process.hpp"
#include "runtime/nats/nats_client.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

void pqxx_exec(const std::string& url, std::vector<std::string> sql) {
  pqxx::connection c{url};
  pqxx::nontransaction n{c};
  for (auto& q : sql)
    n.exec(q);
}

const char* node_pw = role_servers::node_pw;
const char* publisher_pw = role_servers::publisher_pw;
const char* viewer_pw = role_servers::viewer_pw;
const char* admin_pw = role_servers::admin_pw;

class security_test : public ::testing::Test {
public:
  // The shared servers and nodes start in the first test's SetUp, not in
  // SetUpTestSuite: a failure there makes GoogleTest (and CTest) report
  // the tests as skipped instead of failed.
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
    auto err = servers_->start();
    ASSERT_TRUE(err.empty()) << err;
    dir_ = servers_->dir();
    nats_port_ = servers_->nats_port();
    pg_ = &servers_->pg();
    write_file(dir_ + "/node.toml",
               servers_->node_config("sec-node", R"([pipelines.work]
stages = [ { name = "only", kind = "noop" } ]
)"));
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
    }
    delete servers_;
  }

  static std::string url() {
    return "nats://127.0.0.1:" + std::to_string(nats_port_);
  }

  static caf::expected<std::shared_ptr<nats_client>>
  connect_as(const std::string& user, const std::string& pw) {
    nats_connect_options o;
    o.urls = url();
    o.auth.user = user;
    o.auth.password = pw;
    return nats_client::connect(o);
  }

  /// `troupe shell --json` as `user` with the password in a file.
  static std::pair<int, std::vector<json>> shell(const std::string& user,
                                                 const std::string& cmds) {
    static int n = 0;
    child_process sh{{TROUPE_BINARY, "shell", "--nats", url(), "--user", user,
                      "--password-file", dir_ + "/" + user + ".pw", "--json",
                      "-c", cmds},
                     dir_ + "/shell-" + std::to_string(++n) + ".log"};
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

  static inline bool set_up_ = false;
  static inline bool setup_failed_ = false;
  static std::string dir_;
  static int nats_port_;
  static role_servers* servers_;
  static local_postgres* pg_;
  static child_process* node_;
};

std::string security_test::dir_;
int security_test::nats_port_ = 0;
role_servers* security_test::servers_ = nullptr;
local_postgres* security_test::pg_ = nullptr;
child_process* security_test::node_ = nullptr;

} // namespace

TEST_F(security_test, APublisherSubmitsButCannotReadAdminSubjects) {
  auto pub = connect_as("publisher", publisher_pw);
  ASSERT_TRUE(pub) << describe(pub.error());
  auto r = (*pub)->request(
      "troupe.api.v1.submit",
      json{{"pipeline", "work"}, {"payload", {{"n", 1}}}}.dump(), 5000);
  ASSERT_TRUE(r) << describe(r.error());
  EXPECT_TRUE(json::parse(*r).value("ok", false)) << *r;
  auto denied =
      admin_request(**pub, "troupe.admin.any.read.jobs", json{}, 3000ms);
  EXPECT_EQ(denied["error"]["code"], "permission_denied") << denied.dump();
  EXPECT_NE(denied["error"]["message"].get<std::string>().find(
                "Permissions Violation"),
            std::string::npos)
      << denied.dump();
}

TEST_F(security_test, AWrongPasswordIsRefusedWithAClearError) {
  auto bad = connect_as("publisher", "not-the-password");
  ASSERT_FALSE(bad);
  auto msg = describe(bad.error());
  EXPECT_NE(msg.find("authorization violation"), std::string::npos) << msg;
  EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(nats_port_)),
            std::string::npos)
      << msg;
  EXPECT_EQ(msg.find("not-the-password"), std::string::npos) << msg;
  // The shell says the same in one line and exits non-zero.
  write_file(dir_ + "/wrong.pw", "wrong-password-1");
  child_process sh{{TROUPE_BINARY, "shell", "--nats", url(), "--user", "viewer",
                    "--password-file", dir_ + "/wrong.pw", "-c", "nodes"},
                   dir_ + "/wrong-shell.log"};
  EXPECT_EQ(sh.wait(30s), 1);
  EXPECT_NE(sh.output().find("authorization violation"), std::string::npos)
      << sh.output();
  EXPECT_EQ(sh.output().find("wrong-password-1"), std::string::npos);
}

TEST_F(security_test, AViewerInspectsButIsRefusedEverySteeringVerb) {
  auto [rc, docs] = shell("viewer", "nodes; jobs; dlq; pipelines");
  EXPECT_EQ(rc, 0);
  ASSERT_EQ(docs.size(), 4u);
  for (auto& d : docs)
    EXPECT_TRUE(d.value("ok", false)) << d.dump();
  EXPECT_EQ(docs[0]["nodes"][0]["node_id"], "sec-node");
  for (auto cmd :
       {"cancel some-job", "replay some-job", "drain sec-node", "pause work"}) {
    auto [rc2, d2] = shell("viewer", cmd);
    EXPECT_EQ(rc2, 1) << cmd;
    ASSERT_EQ(d2.size(), 1u) << cmd;
    auto verb = std::string{cmd}.substr(0, std::string{cmd}.find(' '));
    EXPECT_EQ(d2[0]["error"]["code"], "permission_denied") << d2[0].dump();
    EXPECT_EQ(d2[0]["error"]["message"].get<std::string>().rfind(
                  "permission denied: " + verb + " needs control rights", 0),
              0u)
        << d2[0].dump();
  }
  // An admin may steer.
  auto [rc3, d3] = shell("admin", "pause work; unpause work");
  EXPECT_EQ(rc3, 0) << d3.size();
}

TEST_F(security_test, TlsWithTheRightCaConnectsAndAWrongCaFailsFast) {
  // A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated
  // CA, all generated here.
  auto ssl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    auto r = run_command(args, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  auto d = dir_ + "/tls";
  run_command({"mkdir", "-p", d}, 10s);
  for (auto ca : {"ca", "other-ca"})
    ssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         std::string{"/CN=troupe test "} + ca, "-keyout", d + "/" + ca + ".key",
         "-out", d + "/" + ca + ".pem"});
  ssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
       "-keyout", d + "/server.key", "-out", d + "/server.csr"});
  write_file(d + "/san.ext", "subjectAltName=IP:127.0.0.1\n");
  ssl({"x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey",
       d + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile",
       d + "/san.ext", "-out", d + "/server.pem"});
  auto port = free_port();
  write_file(d + "/nats.conf", "listen: 127.0.0.1:" + std::to_string(port) +
                                   "\ntls { cert_file: \"" + d +
                                   "/server.pem\"\n key_file: \"" + d +
                                   "/server.key\" }\n");
  auto pid =
      spawn_process({"nats-server", "-c", d + "/nats.conf"}, d + "/nats.log");
  ASSERT_TRUE(pid);
  test::eventually([&] { return port_open(port); },
                   std::chrono::milliseconds{5000},
                   std::chrono::milliseconds{50});
  auto tls_url = "nats://127.0.0.1:" + std::to_string(port);
  nats_connect_options o;
  o.urls = tls_url;
  o.auth.tls_ca = d + "/ca.pem";
  auto good = nats_client::connect(o);
  EXPECT_TRUE(good) << (good ? std::string{} : describe(good.error()));
  o.auth.tls_ca = d + "/other-ca.pem";
  auto t0 = std::chrono::steady_clock::now();
  auto bad = nats_client::connect(o);
  ASSERT_FALSE(bad);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  auto msg = describe(bad.error());
  EXPECT_NE(msg.find("TLS handshake failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find(tls_url), std::string::npos) << msg;
  // A shell with the wrong CA: one line, exit 1.
  child_process sh{{TROUPE_BINARY, "shell", "--nats", tls_url, "--tls-ca",
                    d + "/other-ca.pem", "-c", "nodes"},
                   d + "/shell.log"};
  EXPECT_EQ(sh.wait(30s), 1);
  EXPECT_NE(sh.output().find("TLS handshake failed"), std::string::npos)
      << sh.output();
  stop_process(*pid, 10s);
}

TEST_F(security_test, ANodeRunsAsALeastPrivilegeRoleAndNoSecretIsPrinted) {
  // The schema exists (the first node migrated as the owner); a role with
  // only DML rights runs a second node, as docs/security.md describes.
  {
    auto admin_url = pg_->url();
    pqxx_exec(
        admin_url,
        {"do $$ begin create role troupe_node login password "
         "'node-db-pw-4417'; "
         "exception when duplicate_object then null; end $$",
         "grant connect on database troupe to troupe_node",
         "grant usage on schema public to troupe_node",
         "grant select, insert, update, delete on all tables in schema public "
         "to troupe_node",
         "grant usage, select on all sequences in schema public to "
         "troupe_node"});
  }
  auto url = pg_->url(); // postgresql://postgres@127.0.0.1:P/troupe
  auto at = url.find("postgres@");
  ASSERT_NE(at, std::string::npos) << url;
  url.replace(at, std::strlen("postgres@"), "troupe_node:node-db-pw-4417@");
  auto cfg = read_file(dir_ + "/node.toml");
  cfg.replace(cfg.find("sec-node"), std::strlen("sec-node"), "sec-node-2");
  auto pg_at = cfg.find(pg_->url());
  ASSERT_NE(pg_at, std::string::npos);
  cfg.replace(pg_at, pg_->url().size(), url);
  write_file(dir_ + "/node2.toml", cfg);
  child_process node2{{TROUPE_BINARY, "node", "--config", dir_ + "/node2.toml"},
                      dir_ + "/node2.log"};
  ASSERT_TRUE(node2.wait_for_output(": ready", 60s)) << node2.output();
  // Stop the first node so that the least-privilege one runs the job.
  node_->signal(SIGTERM);
  EXPECT_EQ(node_->wait(30s), 0);
  auto pub = connect_as("publisher", publisher_pw);
  ASSERT_TRUE(pub);
  auto r = (*pub)->request(
      "troupe.api.v1.submit",
      json{{"pipeline", "work"}, {"key", "lp-1"}, {"payload", 1}}.dump(), 5000);
  ASSERT_TRUE(r);
  auto [rc, docs] = shell("admin", "job lp-1");
  for (int i = 0;
       i < 50 && (docs.empty() || docs[0]["job"]["state"] != "succeeded");
       ++i) {
    std::this_thread::sleep_for(100ms);
    std::tie(rc, docs) = shell("admin", "job lp-1");
  }
  ASSERT_FALSE(docs.empty());
  EXPECT_EQ(docs[0]["job"]["state"], "succeeded") << docs[0].dump();
  node2.signal(SIGTERM);
  EXPECT_EQ(node2.wait(30s), 0);
  // No password of this suite appears in any output it captured.
  std::string all = node_->output() + node2.output();
  for (int i = 1; i < 40; ++i)
    all += read_file(dir_ + "/shell-" + std::to_string(i) + ".log");
  for (auto secret :
       {node_pw, publisher_pw, viewer_pw, admin_pw, "node-db-pw-4417"})
    EXPECT_EQ(all.find(secret), std::string::npos) << secret;
}
