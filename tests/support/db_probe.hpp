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

/// A plain NATS client of `url` (fails the test if it cannot connect).
inline std::shared_ptr<nats_client> connect_client(const std::string& url) {
  nats_connect_options o;
  o.urls = url;
  auto c = nats_client::connect(o);
  EXPECT_TRUE(c) << describe(c.error());
  return c ? *c : nullptr;
}

} // namespace troupe::test
