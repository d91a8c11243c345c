#include "runtime/pg/tenant_rates.hpp"

#include <cmath>

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "runtime/pg/lazy_connection.hpp"

namespace troupe {

std::int64_t wait_for_tokens(double held, int n, double rate_per_s) {
  if (held >= n || rate_per_s <= 0)
    return 0;
  return static_cast<std::int64_t>(std::ceil((n - held) / rate_per_s * 1000));
}

std::vector<std::int64_t> reserved_waits(double held, int n,
                                         double rate_per_s) {
  std::vector<std::int64_t> out;
  out.reserve(n);
  // Job i is paid for once the bucket is back to i + 1 tokens' worth.
  for (int i = 0; i < n; ++i)
    out.push_back(wait_for_tokens(held, i + 1, rate_per_s));
  return out;
}

tenant_rates::tenant_rates(std::string pg_url)
    : conn_(std::make_unique<lazy_connection>(
          std::move(pg_url), [](pqxx::connection& c) {
            c.prepare("take_rate",
                      "select held, taken from troupe.take_rate($1, $2, $3, "
                      "$4, $5)");
          })) {}

tenant_rates::~tenant_rates() = default;

caf::expected<rate_take> tenant_rates::take(const std::string& tenant,
                                            const tenant_limits& lim, int n,
                                            bool reserve) {
  std::lock_guard<std::mutex> guard{mtx_};
  return conn_->run("taking from a tenant's rate", [&](pqxx::connection& c) {
    pqxx::nontransaction t{c};
    auto r = t.exec_prepared1("take_rate", tenant, lim.rate_per_s,
                              lim.rate_burst, n, reserve);
    return rate_take{r[0].as<double>(), r[1].as<int>()};
  });
}

} // namespace troupe
