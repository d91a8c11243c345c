#include "actors/builtin_stages.hpp"

#include <functional>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"

namespace troupe {

namespace {

using json = nlohmann::json;

caf::error bad_param(const stage_config& cfg, const std::string& what) {
  return make_error(errc::invalid_payload,
                    "stage '" + cfg.name + "' (" + cfg.kind + "): " + what);
}

// Reads an optional duration parameter.
caf::error read_duration(const stage_config& cfg, const char* key,
                         duration_ms& out) {
  auto i = cfg.params.find(key);
  if (i == cfg.params.end())
    return caf::none;
  if (!i->is_string())
    return bad_param(cfg, std::string{key} + " must be a duration string");
  auto d = parse_duration(i->get<std::string>());
  if (!d)
    return bad_param(cfg, std::string{key} + ": malformed duration '" +
                              i->get<std::string>() + "'");
  out = *d;
  return caf::none;
}

// Delivers `outcome` to the stage actor itself, now or after `delay`.
void deliver(caf::event_based_actor* self, duration_ms delay,
             stage_outcome outcome) {
  if (delay.count() > 0)
    self->delayed_send(self, delay, std::move(outcome));
  else
    self->send(self, std::move(outcome));
}

class noop_stage final : public stage_kind {
public:
  void start(caf::event_based_actor* self,
             const stage_request&) const override {
    deliver(self, duration_ms{0}, stage_success("{}"));
  }
};

class sleep_stage final : public stage_kind {
public:
  explicit sleep_stage(duration_ms d) : duration_(d) {}

  void start(caf::event_based_actor* self,
             const stage_request&) const override {
    deliver(self, duration_, stage_success("{}"));
  }

private:
  duration_ms duration_;
};

class fault_stage final : public stage_kind {
public:
  int fail_first = 0;
  double probability = 0.0;
  bool throws = false;
  bool permanent = false;
  duration_ms delay{0};
  std::string poison_key;

  void start(caf::event_based_actor* self,
             const stage_request& req) const override {
    if (!poison_key.empty()) {
      // Only parsed when configured: the common path stays parse-free.
      auto in = json::parse(req.input, nullptr, false);
      if (in.is_object() && in.contains("payload") &&
          in["payload"].is_object() && in["payload"].value(poison_key, false)) {
        deliver(self, delay,
                stage_failure("bad_input",
                              "payload is marked '" + poison_key + "'", false));
        return;
      }
    }
    bool fail = req.attempt <= fail_first;
    if (!fail && probability > 0.0) {
      // A hash rather than a shared RNG: the same job fails the same way in
      // every run, on every node, without locking.
      auto h = std::hash<std::string>{}(req.job_id + '\x1f' + req.stage +
                                        '\x1f' + std::to_string(req.attempt));
      fail = static_cast<double>(h % 1000000) / 1000000.0 < probability;
    }
    if (!fail) {
      deliver(self, delay, stage_success("{}"));
      return;
    }
    std::string msg =
        "injected fault (attempt " + std::to_string(req.attempt) + ")";
    if (throws)
      throw std::runtime_error(msg);
    deliver(
        self, delay,
        stage_failure(permanent ? "bad_input" : "injected", msg, !permanent));
  }
};

} // namespace

caf::expected<std::shared_ptr<const stage_kind>>
make_noop_stage(const stage_config&) {
  return std::shared_ptr<const stage_kind>{std::make_shared<noop_stage>()};
}

caf::expected<std::shared_ptr<const stage_kind>>
make_sleep_stage(const stage_config& cfg) {
  duration_ms d{0};
  if (!cfg.params.contains("duration"))
    return bad_param(cfg, "missing parameter 'duration'");
  if (auto err = read_duration(cfg, "duration", d))
    return err;
  return std::shared_ptr<const stage_kind>{std::make_shared<sleep_stage>(d)};
}

caf::expected<std::shared_ptr<const stage_kind>>
make_fault_stage(const stage_config& cfg) {
  auto st = std::make_shared<fault_stage>();
  const auto& p = cfg.params;
  try {
    st->fail_first = p.value("fail_first", 0);
    st->probability = p.value("probability", 0.0);
    st->throws = p.value("throw", false);
    st->permanent = p.value("permanent", false);
    st->poison_key = p.value("poison_key", std::string{});
  } catch (const json::exception& e) {
    return bad_param(cfg, e.what());
  }
  if (st->fail_first < 0)
    return bad_param(cfg, "fail_first must be >= 0");
  if (st->probability < 0.0 || st->probability > 1.0)
    return bad_param(cfg, "probability must be in [0, 1]");
  if (auto err = read_duration(cfg, "duration", st->delay))
    return err;
  return std::shared_ptr<const stage_kind>{std::move(st)};
}

} // namespace troupe
