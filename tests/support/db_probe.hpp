#pragma once

// What integration tests ask the outside systems, as an outside client
// would: a count from PostgreSQL (the system of record), a NATS connection.

#include <cstdint>
#include <memory>
#include <string>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "messages/errc.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe::test {

/// The single number `sql` selects, on a connection of its own.
inline std::int64_t count_rows(const std::string& pg_url,
                               const std::string& sql) {
  pqxx::connection c{pg_url};
  pqxx::nontransaction n{c};
  return n.exec1(sql)[0].as<std::int64_t>();
}

/// The most attempts of jobs whose id is `like` that ran at one instant,
/// from the attempt history.
inline std::int64_t most_attempts_at_once(const std::string& pg_url,
                                          const std::string& like) {
  return count_rows(pg_url, R"SQL(
select coalesce(max(c), 0) from (
  select (select count(*) from job_attempts b
          where b.job_id like ')SQL" +
                                like + R"SQL(' and
            b.started_at <= a.started_at
            and b.started_at + b.duration_ms * interval '1 millisecond'
                > a.started_at) as c
  from job_attempts a where a.job_id like ')SQL" +
                                like + R"SQL(') x
)SQL");
}

/// A plain NATS client of `url` (fails the test if it cannot connect).
inline std::shared_ptr<nats_client> connect_client(const std::string& url) {
  nats_connect_options o;
  o.urls = url;
  auto c = nats_client::connect(o);
  EXPECT_TRUE(c) << describe(c.error());
  return c ? *c : nullptr;
}

} // namespace troupe::test
