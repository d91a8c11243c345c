#include "bench/bench_common.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdio>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace troupe::bench {

using json = nlohmann::json;

double figure::median() const {
  auto s = samples;
  std::sort(s.begin(), s.end());
  if (s.empty())
    return 0;
  return s.size() % 2 ? s[s.size() / 2]
                      : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
}

double figure::min() const {
  return *std::min_element(samples.begin(), samples.end());
}

double figure::max() const {
  return *std::max_element(samples.begin(), samples.end());
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string read_text(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string figures_table(const std::vector<figure>& figs) {
  std::string t = "| scenario | measure | median | min | max | unit | note "
                  "|\n|---|---|---:|---:|---:|---|---|\n";
  for (auto& f : figs) {
    int d = f.median() >= 100 ? 0 : 2;
    t += "| " + f.scenario + " | " + f.what + " | " + fmt(f.median(), d) +
         " | " + fmt(f.min(), d) + " | " + fmt(f.max(), d) + " | " + f.unit +
         " | " + f.note + " |\n";
  }
  return t;
}

void fail(const std::string& msg) {
  throw bench_failure(msg);
}

/// A payload of roughly the size of a typical small job (~200 bytes).
std::string job_body(int i) {
  return json{{"payload",
               {{"n", i},
                {"doc", "s3://bucket/some/path/to/document-" +
                            std::to_string(i) + ".json"},
                {"pad", std::string(120, 'x')}}}}
      .dump();
}

/// Publishes `n` messages to `subject` asynchronously (acks awaited at the
/// end), each with Nats-Msg-Id `<prefix><i>`. Returns seconds taken.
double publish_all(jsCtx* js, const std::string& subject,
                   const std::string& id_prefix, int n) {
  auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) {
    natsMsg* m = nullptr;
    auto body = job_body(i);
    natsMsg_Create(&m, subject.c_str(), nullptr, body.data(),
                   static_cast<int>(body.size()));
    auto id = id_prefix + std::to_string(i);
    natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    if (js_PublishMsgAsync(js, &m, nullptr) != NATS_OK)
      fail("async publish failed");
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 120000;
  if (js_PublishAsyncComplete(js, &po) != NATS_OK)
    fail("publish acks did not all arrive");
  natsMsgList pending{nullptr, 0};
  if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK &&
      pending.Count > 0)
    fail(std::to_string(pending.Count) + " publishes failed");
  return seconds_since(t0);
}

std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

} // namespace troupe::bench
