#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "messages/json_guard.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/client/api_requests.hpp"
#include "runtime/client/job_tracker.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe {

namespace {

/// Reads `--payload`: inline JSON, or @FILE.
bool read_payload(const std::string& arg, nlohmann::json& out,
                  std::string& error) {
  std::string text = arg;
  if (!arg.empty() && arg[0] == '@') {
    std::ifstream in{arg.substr(1)};
    if (!in) {
      error = "cannot read payload file '" + arg.substr(1) + "'";
      return false;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  out = parse_json_or_discarded(text, 64);
  if (out.is_discarded()) {
    error = "--payload is not valid JSON";
    return false;
  }
  return true;
}

/// Where to submit: --nats, else the configuration's, else
/// TROUPE_NATS_URL, else the local default. False if the configuration is
/// bad (its problems are printed).
bool connection_settings(const submit_options& opts, nats_connect_options& co,
                         std::string& prefix) {
  co.urls = opts.nats_url;
  co.name = "troupe-submit";
  prefix = "troupe";
  if (!opts.config_file.empty()) {
    auto cfg = load_config_for("submit", opts.config_file);
    if (!cfg)
      return false;
    co.auth = auth_from(cfg->nats);
    if (co.urls.empty())
      co.urls = cfg->nats.url;
    prefix = cfg->nats.prefix;
  }
  if (co.urls.empty())
    if (auto env = process_env()("TROUPE_NATS_URL"))
      co.urls = *env;
  if (co.urls.empty())
    co.urls = "nats://127.0.0.1:4222";
  return true;
}

/// `--at`: ms since the epoch, or an RFC 3339 UTC time (`Z`, seconds).
std::optional<std::int64_t> parse_time(const std::string& text) {
  if (!text.empty() &&
      text.find_first_not_of("0123456789") == std::string::npos)
    return text.size() <= 15 ? std::optional<std::int64_t>{std::stoll(text)}
                             : std::nullopt;
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0')
    return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

/// The `delay_ms` and `run_at_ms` of --delay and --at; false (with the
/// reason) if either is malformed.
bool read_times(const submit_options& opts, nlohmann::json& fields,
                std::string& error) {
  if (!opts.delay.empty()) {
    auto d = parse_duration(opts.delay);
    if (!d) {
      error = "--delay '" + opts.delay + "' is not a duration (90s, 10m, 2h)";
      return false;
    }
    fields["delay_ms"] = d->count();
  }
  if (!opts.at.empty()) {
    auto t = parse_time(opts.at);
    if (!t) {
      error = "--at '" + opts.at +
              "' is not a time (2026-12-24T18:00:00Z, or ms since the epoch)";
      return false;
    }
    fields["run_at_ms"] = *t;
  }
  return true;
}

std::vector<std::string> request_bodies(const submit_options& opts,
                                        const nlohmann::json& payload,
                                        const nlohmann::json& times) {
  std::vector<std::string> bodies;
  for (int i = 0; i < opts.count; ++i) {
    nlohmann::json req{{"pipeline", opts.pipeline}, {"payload", payload}};
    req.update(times);
    if (!opts.key.empty())
      req["key"] =
          opts.count == 1 ? opts.key : opts.key + "-" + std::to_string(i);
    if (!opts.tenant.empty())
      req["tenant"] = opts.tenant;
    bodies.push_back(req.dump());
  }
  return bodies;
}

/// Prints each accepted job id (stdout; not with --wait, whose lines
/// name them) or refusal (stderr); the refusals.
int print_replies(const std::vector<submit_reply>& replies, bool waiting) {
  int failed = 0;
  for (auto& r : replies) {
    if (r.ok) {
      if (!waiting)
        std::printf("%s\n", r.job_id.c_str());
    } else {
      ++failed;
      std::fprintf(stderr, "rejected: %s: %s\n", r.error_code.c_str(),
                   r.error_message.c_str());
    }
  }
  std::fflush(stdout);
  return failed;
}

/// The line `--wait` prints for a job: `<id> <state> <result JSON>` for a
/// job that succeeded, `<id> <state> <code>: <message>` otherwise.
std::string end_line(const job_end& e) {
  std::string line = e.job_id + " ";
  if (!e.error_code.empty())
    return line + "unknown " + e.error_code + ": " + e.error_message;
  line += e.done ? e.state : e.state + " (still running)";
  if (e.state == "succeeded")
    return line + " " + e.job.value("result", nlohmann::json()).dump();
  auto err = e.job.value("error", nlohmann::json());
  if (err.is_object())
    line += " " + err.value("code", "") + ": " + err.value("message", "");
  return line;
}

/// --wait: asks the status API until every job ended; prints one line per
/// job; returns the jobs that did not succeed.
int await_outcomes(nats_client& nats, const subjects& subj,
                   const std::vector<submit_reply>& replies,
                   const std::string& tenant) {
  std::vector<std::string> ids;
  for (auto& r : replies)
    if (r.ok)
      ids.push_back(r.job_id);
  bool tty = isatty(STDERR_FILENO) && ids.size() > 1;
  auto ends = wait_for_jobs(nats, subj, ids, tenant, std::chrono::hours{24},
                            [&](std::size_t d, std::size_t n) {
                              if (tty)
                                std::fprintf(stderr, "\rwaiting %s",
                                             progress_bar(d, n).c_str());
                            });
  if (tty)
    std::fprintf(stderr, "\n");
  if (!ends) {
    std::fprintf(stderr, "troupe submit: %s\n", describe(ends.error()).c_str());
    return static_cast<int>(ids.size());
  }
  int failed = 0;
  for (auto& e : *ends) {
    std::printf("%s\n", end_line(e).c_str());
    failed += e.state != "succeeded";
  }
  std::fflush(stdout);
  return failed;
}

} // namespace

int cmd_submit(const submit_options& opts) {
  nats_connect_options co;
  std::string prefix;
  if (!connection_settings(opts, co, prefix))
    return 2;
  nlohmann::json payload;
  std::string error;
  nlohmann::json times = nlohmann::json::object();
  if (!read_payload(opts.payload, payload, error) ||
      !read_times(opts, times, error)) {
    std::fprintf(stderr, "troupe submit: %s\n", error.c_str());
    return 2;
  }
  auto nats = nats_client::connect(co);
  if (!nats) {
    std::fprintf(stderr, "troupe submit: %s\n", describe(nats.error()).c_str());
    return 1;
  }
  subjects subj{prefix};
  auto bodies = request_bodies(opts, payload, times);
  bool tty = isatty(STDERR_FILENO) && opts.count > 1;
  std::size_t replied = 0;
  auto replies = submit_requests(
      **nats, subj, bodies, 256, std::chrono::seconds{60}, [&](std::size_t) {
        ++replied;
        if (tty && (replied % 64 == 0 || replied == bodies.size()))
          std::fprintf(stderr, "\rsubmitting %s",
                       progress_bar(replied, bodies.size()).c_str());
      });
  if (tty)
    std::fprintf(stderr, "\n");
  if (!replies) {
    std::fprintf(stderr, "troupe submit: %s\n",
                 describe(replies.error()).c_str());
    return 1;
  }
  int failed = print_replies(*replies, opts.wait);
  if (opts.wait)
    failed += await_outcomes(**nats, subj, *replies, opts.tenant);
  return failed == 0 ? 0 : 1;
}

} // namespace troupe
