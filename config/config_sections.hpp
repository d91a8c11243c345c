#pragma once

// Internal to troupe_config: reads the top-level sections of a configuration
// document ([node], [nats], [postgres], [cluster], [tenants], [retention],
// [pipelines.*]) into troupe_config, one function per section.

#include "config/config_reader.hpp"

namespace troupe::config_detail {

/// Reads every section of `root` into `cfg`; problems go to `r` in reading
/// order (parse_config sorts them by line afterwards).
void read_document(reader& r, const toml::table& root,
                   const config_context& ctx, troupe_config& cfg);

} // namespace troupe::config_detail
