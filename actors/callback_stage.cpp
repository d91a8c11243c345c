#include "actors/callback_stage.hpp"

#include <cctype>
#include <random>

#include <nlohmann/json.hpp>

#include "messages/errc.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

/// Largest stage input a callback request carries (bytes).
constexpr std::size_t max_request_input = 256 * 1024;

/// An integer field of a record from the store, or `otherwise`.
std::int64_t int_field(const json& rec, const char* key,
                       std::int64_t otherwise) {
  auto i = rec.find(key);
  return i != rec.end() && i->is_number_integer() ? i->get<std::int64_t>()
                                                  : otherwise;
}

class callback_stage final : public stage_kind {
public:
  callback_stage(std::string subject, std::int64_t wait_ms)
      : subject_(std::move(subject)), wait_ms_(wait_ms) {}

  void start(caf::event_based_actor* self,
             const stage_request& req) const override {
    auto rec = json::parse(req.callback, nullptr, false);
    if (rec.is_object() &&
        int_field(rec, "stage_index", -1) == req.stage_index &&
        int_field(rec, "life", 0) == req.life &&
        int_field(rec, "attempt", 0) == req.attempt) {
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
    // Written by the complete API, which checked every field; read as if
    // it had not (a hand-edited row must fail the attempt, not throw).
    auto field = [&](const char* key, json otherwise) {
      auto i = c->find(key);
      return i != c->end() && i->type() == otherwise.type() ? *i : otherwise;
    };
    if (field("ok", false).get<bool>())
      return stage_success(c->contains("output") ? c->at("output").dump()
                                                 : "null");
    return stage_failure(field("code", "callback_failed").get<std::string>(),
                         field("message", "").get<std::string>(),
                         field("retryable", true).get<bool>());
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
    // A request must fit in one NATS message: a large input is left out
    // (the outside system knows the job by its id).
    if (req.input.size() <= max_request_input)
      body += ",\"input\":" + req.input + "}";
    else
      body += ",\"input_omitted\":true,\"input_bytes\":" +
              std::to_string(req.input.size()) + "}";
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
