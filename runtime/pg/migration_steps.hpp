#pragma once

// The schema's migrations, in order (runtime/pg/migrations.cpp applies
// them). Never edit a released migration: add a new one (docs/schema.md).

#include <iterator>

namespace troupe {

struct migration {
  int version;
  const char* name;
  const char* sql;
};

struct migration_range {
  const migration* first;
  const migration* last;
  const migration* begin() const { return first; }
  const migration* end() const { return last; }
};

/// Every migration, oldest first.
migration_range migration_steps();

} // namespace troupe
