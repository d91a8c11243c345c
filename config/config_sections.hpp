#pragma once

// Internal to troupe_config: reads the top-level sections of a configuration
// document ([node], [nats], [postgres], [cluster], [tenants], [retention],
// [pipelines.*]) into troupe_config, one function per section.

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config_reader.hpp"

namespace troupe::config_detail {

/// An `inherit_env`-style list at `n`: variable names or prefixes ending in
/// '*'. One problem for a value that is no array of strings, else one per
/// bad entry (see env_pattern_problem); true if all is well.
bool check_env_patterns(reader& r, const toml::node* n,
                        const std::string& path);

/// Reads one stage of a pipeline (config/config_stages.cpp).
void read_stage(reader& r, const toml::node& n, const std::string& path,
                const config_context& ctx, pipeline_config& pc,
                std::set<std::string>& names);

/// The table `[<section>.<name>]` at `n` and its key path (a name that is
/// not a subject token is quoted, so the path stays unambiguous), or null
/// with a problem if it is no table. A bad name is reported with
/// `name_rule` and the table is still read.
const toml::table* named_table(reader& r, const std::string& section,
                               const std::string& name, const toml::node& n,
                               const char* name_rule, std::string& path);

/// A TOML value as JSON (dates and times become their TOML text).
nlohmann::json to_json(const toml::node& n);

/// [schedules.<name>] (config/config_schedules.cpp); needs the pipelines.
void read_schedules(reader& r, const toml::table& t, troupe_config& cfg);

/// Reads every section of `root` into `cfg`; problems go to `r` in reading
/// order (parse_config sorts them by line afterwards).
void read_document(reader& r, const toml::table& root,
                   const config_context& ctx, troupe_config& cfg);

} // namespace troupe::config_detail
