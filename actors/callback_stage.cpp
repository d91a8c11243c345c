#include "actors/callback_stage.hpp"

#include <cctype>
#include <random>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

class callback_stage final : public stage_kind {
public:
  callback_stage(std::string subject, std::int64_t wait_ms)
      : subject_(std::move(subject)), wait_ms_(wait_ms) {}

  void start(caf::event_based_actor* self,
             const stage_request& req) const override {
    auto rec = json::parse(req.callback, nullptr, false);
    if (rec.is_object() && rec.value("stage_index", -1) == req.stage_index &&
        rec.value("life", 0) == req.life &&
        rec.value("attempt", 0) == req.attempt) {
      self->send(self, resumed(rec));
      return;
    }
    self->send(self, wait(req));
  }

  bool waits_in_store() const override { return true; }

private:
  /// The attempt was waiting: the store woke it because an outside system
  /// completed it, or else because its deadline passed.
  static stage_outcome resumed(const json& rec) {
    auto c = rec.find("completion");
    if (c == rec.end() || !c->is_object())
      return stage_failure("callback_timeout",
                           "no completion arrived before the deadline");
    if (c->value("ok", false))
      return stage_success(c->contains("output") ? c->at("output").dump()
                                                 : "null");
    return stage_failure(c->value("code", "callback_failed"),
                         c->value("message", ""), c->value("retryable", true));
  }

  stage_outcome wait(const stage_request& req) const {
    auto token = make_callback_token(req.job_id);
    // The request the outside system gets: enough to act and to answer.
    // The input is spliced in (already JSON).
    json head{{"token", token},
              {"job_id", req.job_id},
              {"pipeline", req.pipeline},
              {"stage", req.stage},
              {"stage_index", req.stage_index},
              {"attempt", req.attempt},
              {"idempotency_key", req.idempotency_key},
              {"wait_ms", wait_ms_}};
    auto body = head.dump();
    body.pop_back();
    body += ",\"input\":" + req.input + "}";
    stage_outcome out;
    out.ok = false;
    out.output = std::move(body);
    out.await_token = std::move(token);
    out.await_ms = wait_ms_;
    out.await_subject = subject_;
    return out;
  }

  std::string subject_;
  std::int64_t wait_ms_;
};

} // namespace

caf::expected<std::shared_ptr<const stage_kind>>
make_callback_stage(const stage_config& cfg) {
  std::string subject;
  if (auto i = cfg.params.find("subject"); i != cfg.params.end()) {
    if (!i->is_string() || i->get<std::string>().empty())
      return make_error(errc::invalid_payload,
                        "stage '" + cfg.name +
                            "' (callback): subject must be a non-empty "
                            "string");
    subject = i->get<std::string>();
    if (subject.find_first_of(" \t\r\n*>") != std::string::npos)
      return make_error(errc::invalid_payload,
                        "stage '" + cfg.name + "' (callback): subject '" +
                            subject + "' must be a plain NATS subject");
  }
  auto wait =
      cfg.timeout.count() > 0 ? cfg.timeout.count() : default_callback_wait_ms;
  return std::shared_ptr<const stage_kind>{
      std::make_shared<callback_stage>(std::move(subject), wait)};
}

std::string make_callback_token(const std::string& job_id) {
  // Straight from the OS source each time (no seeded generator whose state
  // earlier tokens would reveal): tokens are capabilities.
  std::random_device rd;
  static const char* const hex = "0123456789abcdef";
  std::string token = job_id + ".";
  for (int i = 0; i < 4; ++i) {
    auto v = static_cast<std::uint32_t>(rd());
    for (int b = 0; b < 8; ++b, v >>= 4)
      token += hex[v & 0xf];
  }
  return token;
}

std::string job_of_callback_token(const std::string& token) {
  auto dot = token.rfind('.');
  if (dot == std::string::npos || dot == 0 || token.size() - dot - 1 != 32)
    return {};
  for (auto i = dot + 1; i < token.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(token[i])))
      return {};
  return token.substr(0, dot);
}

} // namespace troupe
