#pragma once

// Versioned PostgreSQL schema. Migrations are applied in order, each in its
// own transaction, under an advisory lock so that many nodes starting at
// once are safe; applied versions are recorded in schema_migrations.

#include <string>

#include <caf/expected.hpp>

namespace troupe {

/// The schema version this binary expects.
constexpr int latest_schema_version = 16;

/// Applies every missing migration up to `up_to` (tests of an upgrade stop
/// at an older version); returns the resulting version.
caf::expected<int> apply_migrations(const std::string& pg_url,
                                    int up_to = latest_schema_version);

/// Reads the current version (0 if never migrated).
caf::expected<int> schema_version(const std::string& pg_url);

} // namespace troupe
