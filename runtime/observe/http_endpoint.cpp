#include "runtime/observe/http_endpoint.hpp"

#include <cmath>
#include <cstdio>

#include <httplib.h>

#include "messages/errc.hpp"

namespace troupe {

struct http_endpoint::impl {
  httplib::Server server;
  std::thread thread;
  std::function<void()> stopping;
};

namespace {

/// Threads serving requests: a live feed holds one for as long as it is
/// open, and probes must still be answered (runtime/node/http_api caps the
/// feeds well below this).
constexpr std::size_t http_threads = 32;

void send(httplib::Response& res, api_response out) {
  res.status = out.status;
  res.set_header("Cache-Control", "no-store");
  if (!out.stream) {
    res.set_content(out.body, "application/json");
    return;
  }
  res.set_chunked_content_provider(
      "text/event-stream",
      [stream = std::move(out.stream)](std::size_t, httplib::DataSink& sink) {
        stream([&sink](const std::string& chunk) {
          return sink.is_writable() && sink.write(chunk.data(), chunk.size());
        });
        sink.done();
        return true;
      });
}

/// The dashboard's files. The policy lets a page load only this node's own
/// scripts, styles and API (no inline script, no other origin, no
/// framing), so an injected job id or error text cannot run as code.
void serve_files(httplib::Server& srv, const http_handlers& h) {
  if (!h.files)
    return;
  auto serve = [files = h.files](const httplib::Request& req,
                                 httplib::Response& res) {
    auto file = files(req.path);
    if (!file) {
      res.status = 404;
      res.set_content("not found\n", "text/plain");
      return;
    }
    res.set_header("Content-Security-Policy",
                   "default-src 'none'; script-src 'self'; style-src 'self'; "
                   "img-src 'self' data:; connect-src 'self'; "
                   "base-uri 'none'; form-action 'none'; "
                   "frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string{file->bytes}, file->content_type);
  };
  srv.Get("/ui", serve);
  srv.Get(R"(/ui/.*)", serve);
}

} // namespace

http_endpoint::http_endpoint() : impl_(std::make_unique<impl>()) {}

http_endpoint::~http_endpoint() {
  stop();
}

caf::expected<int> http_endpoint::start(const std::string& addr,
                                        http_handlers h) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos)
    return make_error(errc::invalid_payload,
                      "node.http must be host:port, got '" + addr + "'");
  auto host = addr.substr(0, colon);
  int port = std::atoi(addr.c_str() + colon + 1);
  auto& srv = impl_->server;
  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  srv.Get("/readyz", [h](const httplib::Request&, httplib::Response& res) {
    auto [doc, ready] = h.ready();
    res.status = ready ? 200 : 503;
    res.set_content(doc, "application/json");
  });
  srv.Get("/metrics", [h](const httplib::Request&, httplib::Response& res) {
    res.set_content(h.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (h.api) {
    auto serve = [h](const httplib::Request& req, httplib::Response& res) {
      api_request in;
      in.method = req.method;
      in.path = req.path;
      for (const auto& [k, v] : req.params)
        in.query.emplace(k, v);
      in.body = req.body;
      in.authorization = req.get_header_value("Authorization");
      in.remote_addr = req.remote_addr;
      send(res, h.api(in));
    };
    srv.Get(R"(/api/v1/.*)", serve);
    srv.Post(R"(/api/v1/.*)", serve);
    srv.set_payload_max_length(api_max_body);
  }
  serve_files(srv, h);
  srv.new_task_queue = [] { return new httplib::ThreadPool(http_threads); };
  // httplib writes a reply's headers and body separately: with Nagle on, a
  // client that keeps its connection (a browser, a script's session) waited
  // for its own delayed ACK, 40 ms per request.
  srv.set_tcp_nodelay(true);
  impl_->stopping = h.stopping;
  int bound = port;
  if (port == 0)
    bound = srv.bind_to_any_port(host);
  else if (!srv.bind_to_port(host, port))
    bound = -1;
  if (bound <= 0)
    return make_error(errc::unavailable,
                      "cannot listen on " + addr +
                          " (in use?): set node.http or TROUPE_HTTP_ADDR");
  impl_->thread = std::thread{[this] { impl_->server.listen_after_bind(); }};
  return bound;
}

void http_endpoint::stop() {
  if (impl_->thread.joinable()) {
    if (impl_->stopping)
      impl_->stopping();
    impl_->server.stop();
    impl_->thread.join();
  }
}

namespace {

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

} // namespace

void prometheus_text::family(const std::string& name, const char* type,
                             const std::string& help) {
  std::string h;
  for (char c : help)
    h += c == '\n'   ? std::string{"\\n"}
         : c == '\\' ? std::string{"\\\\"}
                     : std::string(1, c);
  out_ += "# HELP " + name + " " + h + "\n# TYPE " + name + " " + type + "\n";
}

void prometheus_text::sample(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& labels,
    double value) {
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    bool first = true;
    for (auto& [k, v] : labels) {
      if (!first)
        out_ += ',';
      first = false;
      out_ += k + "=\"" + escape_label(v) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ' + format_value(value) + '\n';
}

} // namespace troupe
