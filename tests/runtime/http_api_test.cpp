// The node's JSON HTTP API (runtime/node/http_api.hpp) as an outside client
// uses it: a real node on real servers, asked over HTTP with cpp-httplib,
// verdicts from PostgreSQL where something changes.
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/runtime/durable_fixture.hpp"
#include "tests/support/eventually.hpp"

#include "runtime/client/api_requests.hpp"
#include "runtime/node/http_api.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

struct answer {
  int status = 0;
  json body;
};

answer call(httplib::Client& cli, const std::string& method,
            const std::string& path, const std::string& body = {},
            const std::string& token = {}) {
  httplib::Headers h;
  if (!token.empty())
    h.emplace("Authorization", "Bearer " + token);
  auto r = method == "GET"
               ? cli.Get(path.c_str(), h)
               : cli.Post(path.c_str(), h, body, "application/json");
  if (!r)
    return {};
  return {r->status, json::parse(r->body, nullptr, false)};
}

std::string code_of(const answer& a) {
  return a.body.is_object() && a.body.contains("error")
             ? a.body["error"].value("code", "")
             : "";
}

const std::string viewer_token = "viewer-token-0123456789";
const std::string admin_token = "admin-token-0123456789ab";

} // namespace

TEST_F(durable_path_test, HttpApiAnswersLikeTheShellAndRefusesWhatIsWrong) {
  auto node = start_node("http-api");
  httplib::Client cli{"127.0.0.1", http_port_of(*node)};
  auto nodes = call(cli, "GET", "/api/v1/nodes");
  ASSERT_EQ(nodes.status, 200) << nodes.body.dump();
  EXPECT_EQ(nodes.body[0]["node_id"], "itest-node");
  auto trees = call(cli, "GET", "/api/v1/cluster/tree?limit=5");
  ASSERT_EQ(trees.status, 200) << trees.body.dump();
  ASSERT_EQ(trees.body.size(), 1u) << "one tree per node";
  EXPECT_EQ(trees.body[0]["node"], "itest-node");
  EXPECT_FALSE(trees.body[0]["pipelines"].empty());
  // Three jobs through the API's NATS side, then read back over HTTP.
  auto nats = client();
  subjects subj{"troupe"};
  std::vector<std::string> bodies;
  for (int i = 0; i < 3; ++i)
    bodies.push_back(body("three", "http-" + std::to_string(i)));
  ASSERT_TRUE(submit_requests(*nats, subj, bodies, 3, 30s));
  ASSERT_TRUE(eventually([] {
    return count("select count(*) from jobs where job_id like 'http-%' and "
                 "state = 'succeeded'") == 3;
  }));
  auto jobs = call(cli, "GET", "/api/v1/jobs?pipeline=three&limit=2");
  ASSERT_EQ(jobs.status, 200) << jobs.body.dump();
  EXPECT_EQ(jobs.body["jobs"].size(), 2u);
  EXPECT_FALSE(jobs.body["next"].is_null()) << "a second page exists";
  auto job = call(cli, "GET", "/api/v1/jobs/http-1");
  ASSERT_EQ(job.status, 200) << job.body.dump();
  EXPECT_EQ(job.body["job"]["state"], "succeeded");
  // What is wrong gets a status and a code, and changes nothing.
  EXPECT_EQ(code_of(call(cli, "GET", "/api/v1/jobs/nope")), "unknown_job");
  EXPECT_EQ(call(cli, "GET", "/api/v1/jobs/nope").status, 404);
  auto bad_limit = call(cli, "GET", "/api/v1/jobs?limit=lots");
  EXPECT_EQ(bad_limit.status, 400) << bad_limit.body.dump();
  EXPECT_EQ(call(cli, "GET", "/api/v1/nothing").status, 404);
  // Filters from the dashboard: a NUL byte (PostgreSQL's text ends there)
  // or 5,000 characters are answered, not an error.
  for (const std::string& q : std::vector<std::string>{
           "q=%00", "error=%00x", "q=" + std::string(5000, 'x')})
    EXPECT_EQ(call(cli, "GET", "/api/v1/jobs?" + q).status, 200)
        << q.substr(0, 20);
  EXPECT_TRUE(call(cli, "GET", "/api/v1/jobs?q=" + std::string(5000, 'x'))
                  .body["jobs"]
                  .empty());
  auto by_text = call(cli, "GET", "/api/v1/jobs?q=http-1&error=");
  ASSERT_EQ(by_text.status, 200);
  EXPECT_EQ(by_text.body["jobs"].size(), 1u) << by_text.body.dump();
  // A NUL byte or invalid UTF-8 in the path is an unknown job, not a 500.
  EXPECT_EQ(call(cli, "GET", "/api/v1/jobs/%00x").status, 404);
  auto bad_utf8 = call(cli, "GET", "/api/v1/jobs/a%FF%FEb");
  EXPECT_EQ(bad_utf8.status, 404) << bad_utf8.body.dump();
  EXPECT_EQ(call(cli, "POST", "/api/v1/jobs/a%FF/cancel").status, 404);
  EXPECT_EQ(call(cli, "POST", "/api/v1/jobs/http-1/explode").status, 404);
  auto deep =
      call(cli, "POST", "/api/v1/jobs/http-1/retry", std::string(20000, '['));
  EXPECT_EQ(deep.status, 400) << deep.body.dump();
  auto extra =
      call(cli, "POST", "/api/v1/jobs/http-1/cancel", R"({"job_id":"x"})");
  EXPECT_EQ(code_of(extra), "invalid_request") << "no field beyond the route";
  auto huge = cli.Post("/api/v1/jobs/http-1/retry",
                       std::string(100 * 1024, ' '), "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  auto done = call(cli, "POST", "/api/v1/jobs/http-1/cancel");
  EXPECT_EQ(done.status, 409) << done.body.dump();
  EXPECT_EQ(count("select count(*) from jobs where job_id like 'http-%' and "
                  "state = 'succeeded'"),
            3);
  // A retry (new life) from the API runs the job again.
  auto retried =
      call(cli, "POST", "/api/v1/jobs/http-2/retry", R"({"from_stage":"b"})");
  ASSERT_EQ(retried.status, 200) << retried.body.dump();
  EXPECT_EQ(retried.body["life"], 2);
  EXPECT_TRUE(eventually([] {
    return count("select count(*) from jobs where job_id = 'http-2' and "
                 "life = 2 and state = 'succeeded'") == 1;
  }));
  EXPECT_EQ(call(cli, "GET", "/api/v1/nodes").status, 200) << "still up";
}

TEST_F(durable_path_test, HttpApiTokensLetViewersReadAndOnlyAdminsSteer) {
  write_file(dir_ + "/api-tokens", "# role name token\nviewer ann " +
                                       viewer_token + "\n\nadmin ops " +
                                       admin_token + "\n");
  auto text = config_text();
  auto at = text.find("drain_grace");
  text.insert(at, "api_tokens_file = \"" + dir_ + "/api-tokens\"\n");
  write_file(dir_ + "/node-tokens.toml", text);
  auto node = start_troupe_node(dir_ + "/node-tokens.toml",
                                dir_ + "/node-http-tokens.log");
  httplib::Client cli{"127.0.0.1", http_port_of(*node)};
  EXPECT_EQ(call(cli, "GET", "/api/v1/pipelines").status, 401);
  EXPECT_EQ(
      call(cli, "GET", "/api/v1/pipelines", {}, "wrong-token-000000000").status,
      401);
  auto seen = call(cli, "GET", "/api/v1/pipelines", {}, viewer_token);
  EXPECT_EQ(seen.status, 200) << seen.body.dump();
  // A viewer's steering is refused by the server, and nothing changes.
  auto pause_as = [&](const std::string& token) {
    auto r = call(cli, "POST", "/api/v1/pipelines/three/pause", {}, token);
    return std::make_pair(r.status,
                          count("select count(*) from pipeline_controls "
                                "where pipeline = 'three' and paused"));
  };
  EXPECT_EQ(pause_as(viewer_token), std::make_pair(403, std::int64_t{0}));
  EXPECT_EQ(pause_as(admin_token), std::make_pair(200, std::int64_t{1}));
  EXPECT_EQ(
      call(cli, "POST", "/api/v1/pipelines/three/unpause", {}, admin_token)
          .status,
      200);
  EXPECT_TRUE(node->wait_for_output("api: ops (", 10s))
      << "steering is logged with who did it";
  EXPECT_EQ(node->output().find(admin_token), std::string::npos)
      << "no token is ever logged";
}

TEST_F(durable_path_test, AMalformedTokensFileStopsTheNodeNamingTheLine) {
  write_file(dir_ + "/bad-tokens",
             "admin ops " + admin_token + "\nroot eve " + viewer_token + "\n");
  auto text = config_text();
  text.insert(text.find("drain_grace"),
              "api_tokens_file = \"" + dir_ + "/bad-tokens\"\n");
  write_file(dir_ + "/node-bad-tokens.toml", text);
  child_process node{
      {TROUPE_BINARY, "node", "--config", dir_ + "/node-bad-tokens.toml"},
      dir_ + "/node-bad-tokens.log"};
  EXPECT_NE(node.wait(60s), 0);
  EXPECT_NE(node.output().find("bad-tokens:2: role must be viewer or admin"),
            std::string::npos)
      << node.output();
  EXPECT_EQ(node.output().find(viewer_token), std::string::npos);
}

TEST(HttpApiAccess, OpenOnlyOnLoopbackWithoutTokens) {
  EXPECT_TRUE(load_api_access("", "127.0.0.1:9464")->open);
  EXPECT_TRUE(load_api_access("", "localhost:9464")->open);
  EXPECT_TRUE(load_api_access("", "[::1]:9464")->open);
  EXPECT_FALSE(load_api_access("", "0.0.0.0:9464")->open);
  EXPECT_FALSE(load_api_access("", "10.1.2.3:9464")->open);
  auto missing = load_api_access("/nonexistent/tokens", "127.0.0.1:1");
  ASSERT_FALSE(missing);
  EXPECT_NE(describe(missing.error()).find("/nonexistent/tokens"),
            std::string::npos);
}

TEST(HttpApiAccess, TokensFromTheEnvironment) {
  auto both = load_api_access("", "0.0.0.0:9464",
                              "admin ops " + admin_token + ";viewer ann " +
                                  viewer_token);
  ASSERT_TRUE(both) << describe(both.error());
  EXPECT_FALSE(both->open);
  ASSERT_EQ(both->tokens.size(), 2u);
  EXPECT_TRUE(both->tokens.at(admin_token).admin);
  EXPECT_FALSE(both->tokens.at(viewer_token).admin);
  auto bad = load_api_access("", "127.0.0.1:1", "viewer ann tiny-tok");
  ASSERT_FALSE(bad);
  auto text = describe(bad.error());
  EXPECT_NE(text.find("TROUPE_API_TOKENS:1: the token of 'ann'"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("tiny-tok"), std::string::npos) << "never the token";
}

TEST_F(durable_path_test, TheDashboardIsServedWithAStrictPolicy) {
  auto node = start_node("http-ui");
  httplib::Client cli{"127.0.0.1", http_port_of(*node)};
  for (const char* page :
       {"/ui", "/ui/", "/ui/jobs?state=dead_lettered",
        "/ui/jobs/parent/child-1", "/ui/jobs/%00%FF", "/ui/tree"}) {
    auto r = cli.Get(page);
    ASSERT_TRUE(r) << page;
    EXPECT_EQ(r->status, 200) << page;
    EXPECT_NE(r->body.find("/ui/assets/app.js"), std::string::npos) << page;
    EXPECT_NE(r->get_header_value("Content-Security-Policy")
                  .find("script-src 'self'"),
              std::string::npos);
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  }
  auto js = cli.Get("/ui/assets/pages/jobs.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->get_header_value("Content-Type"),
            "text/javascript; charset=utf-8");
  for (const char* missing :
       {"/ui/assets/nope.js", "/ui/assets/../../etc/passwd",
        "/ui/assets/%2e%2e/%2e%2e/etc/passwd", "/ui/assets/", "/uix",
        "/ui/assets/index.html"}) {
    auto r = cli.Get(missing);
    ASSERT_TRUE(r) << missing;
    EXPECT_EQ(r->status, 404) << missing;
  }
  auto post = cli.Post("/ui/jobs", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200) << "pages are read-only";
}

namespace {

/// A reader of one live feed on its own thread, until stop().
struct feed_reader {
  std::mutex mtx;
  std::string seen;
  std::atomic<bool> done{false};
  std::thread thread;

  feed_reader(int port, std::string path) {
    thread = std::thread{[this, port, path] {
      httplib::Client cli{"127.0.0.1", port};
      cli.set_read_timeout(30, 0);
      cli.Get(path.c_str(), [this](const char* data, std::size_t n) {
        std::lock_guard<std::mutex> lock{mtx};
        seen.append(data, n);
        return !done.load();
      });
    }};
  }

  bool saw(const std::string& text) {
    std::lock_guard<std::mutex> lock{mtx};
    return seen.find(text) != std::string::npos;
  }

  /// The next frame (a keep-alive within 5 s) ends the request.
  void stop() {
    done = true;
    thread.join();
  }
};

} // namespace

TEST_F(durable_path_test, HttpApiLiveFeedStreamsEventsAsTheyHappen) {
  auto node = start_node("http-feed");
  int port = http_port_of(*node);
  // Three feeds share the node's one subscription; each gets its own
  // pipeline's events.
  feed_reader three{port, "/api/v1/events?pipeline=three"};
  feed_reader all{port, "/api/v1/events"};
  feed_reader other{port, "/api/v1/events?pipeline=nothing"};
  // A page asks for the types it draws, or for one job's events.
  feed_reader done{port, "/api/v1/events?types=job.succeeded,job.cancelled"};
  feed_reader one{port, "/api/v1/events?types=job.dead_lettered&job=feed-1"};
  for (auto* f : {&three, &all, &other, &done, &one})
    ASSERT_TRUE(eventually([&] { return f->saw(": troupe events"); }, 10s));
  auto nats = client();
  subjects subj{"troupe"};
  ASSERT_TRUE(submit_requests(*nats, subj, {body("three", "feed-1")}, 1, 30s));
  for (auto* f : {&three, &all})
    EXPECT_TRUE(eventually(
        [&] { return f->saw(R"("type":"job.succeeded")") && f->saw("feed-1"); },
        30s));
  EXPECT_TRUE(three.saw("data: {")) << "each event is one SSE data frame";
  EXPECT_FALSE(other.saw("feed-1")) << "another pipeline's feed";
  EXPECT_TRUE(
      eventually([&] { return done.saw(R"("type":"job.succeeded")"); }, 30s));
  EXPECT_TRUE(all.saw(R"("type":"stage.)"));
  EXPECT_FALSE(done.saw(R"("type":"stage.)")) << "a type it did not ask for";
  EXPECT_TRUE(
      eventually([&] { return one.saw(R"("type":"job.succeeded")"); }, 30s));
  EXPECT_TRUE(one.saw(R"("type":"stage.)")) << "every event of its job";
  for (auto* f : {&three, &all, &other, &done, &one})
    f->stop();
  // A feed opened as the others end still gets its events (the last one
  // to end takes the subscription down; the next one subscribes again).
  feed_reader again{port, "/api/v1/events?pipeline=three"};
  ASSERT_TRUE(eventually([&] { return again.saw(": troupe events"); }, 10s));
  ASSERT_TRUE(submit_requests(*nats, subj, {body("three", "feed-2")}, 1, 30s));
  EXPECT_TRUE(eventually([&] { return again.saw("feed-2"); }, 30s));
  again.stop();
  httplib::Client cli{"127.0.0.1", port};
  for (const char* path :
       {"/api/v1/events?pipeline=a.b", "/api/v1/events?types=job.succeeded,",
        "/api/v1/events?types=job%00x", "/api/v1/events?job="}) {
    auto bad = cli.Get(path);
    ASSERT_TRUE(bad) << path;
    EXPECT_EQ(bad->status, 400) << path;
    EXPECT_NE(bad->body.find("invalid_request"), std::string::npos) << path;
  }
}
