#include "actors/stage_kind.hpp"

#include "actors/builtin_stages.hpp"
#include "actors/callback_stage.hpp"
#include "messages/errc.hpp"

namespace troupe {

void stage_registry::add(std::string kind, stage_kind_factory factory,
                         stage_kind_schema schema) {
  schema.kind = kind;
  schemas_[kind] = std::move(schema);
  factories_[std::move(kind)] = std::move(factory);
}

std::vector<stage_kind_schema> stage_registry::schemas() const {
  std::vector<stage_kind_schema> out;
  for (const auto& kv : schemas_)
    out.push_back(kv.second);
  return out;
}

bool stage_registry::contains(const std::string& kind) const {
  return factories_.count(kind) > 0;
}

std::vector<std::string> stage_registry::kinds() const {
  std::vector<std::string> out;
  for (const auto& kv : factories_)
    out.push_back(kv.first);
  return out;
}

caf::expected<std::shared_ptr<const stage_kind>>
stage_registry::make(const stage_config& cfg) const {
  auto i = factories_.find(cfg.kind);
  if (i == factories_.end())
    return make_error(errc::invalid_payload,
                      "unknown stage kind '" + cfg.kind + "'");
  return i->second(cfg);
}

std::shared_ptr<const std::atomic<bool>>
cancellation_flag(caf::event_based_actor* self) {
  auto flag = std::make_shared<std::atomic<bool>>(false);
  // The stage actor terminates when its attempt ends, whichever way.
  self->attach_functor([flag] { flag->store(true); });
  return flag;
}

stage_registry builtin_stage_registry() {
  stage_registry reg;
  using t = param_type;
  reg.add("noop", make_noop_stage, {"noop", {}});
  reg.add("sleep", make_sleep_stage,
          {"sleep", {{"duration", t::duration, true}}});
  reg.add("fault", make_fault_stage,
          {"fault",
           {{"fail_first", t::count},
            {"probability", t::probability},
            {"throw", t::boolean},
            {"permanent", t::boolean},
            {"duration", t::duration},
            {"poison_key", t::string}}});
  reg.add("callback", make_callback_stage,
          {"callback",
           {{"subject", t::string, false,
             "where the callback request goes; default "
             "<prefix>.callbacks.<pipeline>.<stage>"}}});
  return reg;
}

caf::expected<std::shared_ptr<const pipeline_def>>
make_pipeline_def(const pipeline_config& cfg, const stage_registry& reg) {
  auto def = std::make_shared<pipeline_def>();
  def->config = cfg;
  for (const auto& st : cfg.stages) {
    auto kind = reg.make(st);
    if (!kind)
      return make_error(errc::invalid_payload,
                        "pipeline '" + cfg.name + "', stage '" + st.name +
                            "': " + describe(kind.error()));
    def->kinds.push_back(std::move(*kind));
  }
  if (auto problems = check_stage_graph(cfg); !problems.empty())
    return make_error(errc::invalid_payload,
                      "pipeline '" + cfg.name + "', stage '" +
                          cfg.stages[problems.front().stage].name +
                          "': after: " + problems.front().message);
  def->graph = make_stage_graph(cfg);
  return std::shared_ptr<const pipeline_def>{std::move(def)};
}

} // namespace troupe
