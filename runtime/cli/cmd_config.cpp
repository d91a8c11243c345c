#include <cstdio>

#include "config/config_loader.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/exec/exec_stage.hpp"

namespace troupe {

config_context command_config_context() {
  config_context ctx;
  ctx.env = process_env();
  ctx.stage_kinds = stage_catalog();
  return ctx;
}

std::optional<troupe_config> load_config_for(const char* command,
                                             const std::string& path) {
  auto res = load_config_file(path, command_config_context());
  if (res.ok())
    return std::move(res.config);
  for (const auto& p : res.problems)
    std::fprintf(stderr, "%s\n", p.to_string().c_str());
  std::fprintf(stderr, "troupe %s: the configuration has %zu problem%s\n",
               command, res.problems.size(),
               res.problems.size() == 1 ? "" : "s");
  return std::nullopt;
}

int cmd_config_check(const std::vector<std::string>& files) {
  int bad = 0;
  for (const auto& file : files) {
    auto res = load_config_file(file, command_config_context());
    if (res.ok()) {
      auto n = res.config->pipelines.size();
      std::printf("%s: ok (%zu pipeline%s)\n", file.c_str(), n,
                  n == 1 ? "" : "s");
      continue;
    }
    ++bad;
    for (const auto& p : res.problems)
      std::fprintf(stderr, "%s\n", p.to_string().c_str());
    std::fprintf(stderr, "%s: %zu problem%s\n", file.c_str(),
                 res.problems.size(), res.problems.size() == 1 ? "" : "s");
  }
  return bad == 0 ? 0 : 1;
}

} // namespace troupe
