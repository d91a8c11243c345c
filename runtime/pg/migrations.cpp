#include "runtime/pg/migrations.hpp"

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "messages/errc.hpp"
#include "runtime/pg/migration_steps.hpp"

namespace troupe {

namespace {

caf::error db_error(const std::exception& e, const char* what) {
  // A commit cut off by a lost connection (in doubt) is an outage too.
  auto code = dynamic_cast<const pqxx::broken_connection*>(&e) ||
                      dynamic_cast<const pqxx::in_doubt_error*>(&e)
                  ? errc::unavailable
                  : errc::internal;
  return make_error(code, std::string{what} + ": " + e.what());
}

} // namespace

caf::expected<int> schema_version(const std::string& pg_url) {
  try {
    pqxx::connection c{pg_url};
    pqxx::nontransaction n{c};
    auto exists =
        n.exec1("select to_regclass('schema_migrations') is not null");
    if (!exists[0].as<bool>())
      return 0;
    auto r = n.exec1("select coalesce(max(version), 0) from schema_migrations");
    return r[0].as<int>();
  } catch (const std::exception& e) {
    return db_error(e, "reading schema version");
  }
}

caf::expected<int> apply_migrations(const std::string& pg_url, int up_to) {
  try {
    pqxx::connection c{pg_url};
    {
      // A current schema needs no DDL: a node may then run as a role without
      // CREATE rights (docs/security.md), and many nodes start without
      // queueing on the migration lock.
      pqxx::nontransaction n{c};
      if (n.exec1("select to_regclass('schema_migrations') is not null")[0]
              .as<bool>()) {
        auto v = n.exec1("select coalesce(max(version), 0) from "
                         "schema_migrations")[0]
                     .as<int>();
        if (v > latest_schema_version)
          return make_error(
              errc::internal,
              "database schema is at version " + std::to_string(v) +
                  ", newer than this binary knows (" +
                  std::to_string(latest_schema_version) + "): upgrade troupe");
        if (v >= up_to)
          return v;
      }
    }
    int version = 0;
    for (const auto& m : migration_steps()) {
      if (m.version > up_to)
        break;
      pqxx::work w{c};
      // One node migrates at a time; the others wait, then see the version.
      w.exec("select pg_advisory_xact_lock(7243100)");
      w.exec("create table if not exists schema_migrations ("
             " version int primary key, name text not null,"
             " applied_at timestamptz not null default now())");
      auto done = w.exec_params1(
          "select count(*) from schema_migrations where version = $1",
          m.version);
      if (done[0].as<int>() == 0) {
        w.exec(m.sql);
        w.exec_params("insert into schema_migrations (version, name) "
                      "values ($1, $2)",
                      m.version, m.name);
      }
      w.commit();
      version = m.version;
    }
    pqxx::nontransaction n{c};
    auto newest =
        n.exec1("select coalesce(max(version), 0) from schema_migrations");
    if (newest[0].as<int>() > latest_schema_version)
      return make_error(errc::internal,
                        "database schema is at version " +
                            std::to_string(newest[0].as<int>()) +
                            ", newer than this binary knows (" +
                            std::to_string(latest_schema_version) +
                            "): upgrade troupe");
    return version;
  } catch (const std::exception& e) {
    return db_error(e, "applying migrations");
  }
}

} // namespace troupe
