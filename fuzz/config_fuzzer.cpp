// Fuzzes parse_config, the TOML configuration loader with its validation
// (config/config_loader.hpp), from text. Configuration comes from operators,
// not from the network, but `troupe config check` and a node's start-up
// must report a broken file, never crash on it.

#include <optional>
#include <string>

#include "config/config_loader.hpp"
#include "fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data,
                                      std::size_t size) {
  troupe::config_context ctx;
  // The loader reads nats.password_file and nats.token_file unless the
  // environment sets the secret: set both, so that generated paths such as
  // /dev/zero are never opened. The other overrides stay unset, so that the
  // file's own URLs are the ones validated.
  ctx.env = [](const char* name) -> std::optional<std::string> {
    std::string n{name};
    if (n == "TROUPE_NATS_PASSWORD" || n == "TROUPE_NATS_TOKEN")
      return std::string{"fuzz-secret"};
    return std::nullopt;
  };
  // One kind with a parameter of every type, so that the parameter checks
  // are fuzzed too (the real kinds live above config/, in the registry).
  using t = troupe::param_type;
  ctx.stage_kinds = {{"all",
                      {{"d", t::duration, true},
                       {"c", t::count},
                       {"p", t::positive_integer},
                       {"q", t::probability},
                       {"b", t::boolean},
                       {"s", t::string},
                       {"cmd", t::command},
                       {"tab", t::string_table},
                       {"x", t::exit_codes},
                       {"env", t::env_patterns}}},
                     {"open", {}, true}};
  // Crashes, hangs and sanitizer reports are the findings here: the
  // problems it reports are checked by tests/config.
  troupe::parse_config(troupe::fuzz::as_text(data, size), "fuzz.toml", ctx);
  return 0;
}
