#include "runtime/pg/tenant_slots.hpp"
#include "runtime/pg/lazy_connection.hpp"

#include <vector>

#include "messages/json_text.hpp"

namespace troupe {

namespace {

const char* const sql_ensure = R"SQL(
insert into tenant_slots (tenant, slot)
select $1, g from generate_series(0, $2::int - 1) g
on conflict do nothing
)SQL";

// Slots beyond a lowered limit go once nobody holds them.
const char* const sql_trim = R"SQL(
delete from tenant_slots where tenant = $1 and slot >= $2::int
  and (node is null or lease_until < now())
)SQL";

const char* const sql_renew = R"SQL(
update tenant_slots set lease_until = now() + $4::bigint * interval '1 ms'
where tenant = $1 and node = $3 and slot < $2::int
  and (lease_until >= now() or lease_until is null)
returning slot
)SQL";

const char* const sql_take = R"SQL(
update tenant_slots set node = $3,
  lease_until = now() + $5::bigint * interval '1 ms'
where (tenant, slot) in (
  select tenant, slot from tenant_slots
  where tenant = $1 and slot < $2::int
    and (node is null or lease_until < now())
  order by slot
  limit $4::int
  for update skip locked)
returning slot
)SQL";

const char* const sql_give_back = R"SQL(
update tenant_slots set node = null, lease_until = null
where tenant = $1 and node = $2
  and slot = any(array(select jsonb_array_elements_text($3::jsonb)::int))
)SQL";

} // namespace

struct tenant_slots::impl {
  std::string node;
  lazy_connection db;

  impl(std::string url, std::string node_id)
      : node(std::move(node_id)), db(std::move(url), [](pqxx::connection& c) {
          c.prepare("ensure", sql_ensure);
          c.prepare("trim", sql_trim);
          c.prepare("renew", sql_renew);
          c.prepare("take", sql_take);
          c.prepare("give_back", sql_give_back);
        }) {}
};

tenant_slots::tenant_slots(std::string pg_url, std::string node_id)
    : impl_(std::make_unique<impl>(std::move(pg_url), std::move(node_id))) {}

tenant_slots::~tenant_slots() = default;

caf::expected<int> tenant_slots::hold(const std::string& tenant, int limit,
                                      int want, duration_ms lease) {
  return impl_->db.run("leasing tenant slots", [&](pqxx::connection& c) {
    pqxx::work w{c};
    auto ms = static_cast<std::int64_t>(lease.count());
    w.exec_prepared("ensure", tenant, limit);
    w.exec_prepared("trim", tenant, limit);
    std::vector<int> mine;
    for (const auto& r :
         w.exec_prepared("renew", tenant, limit, impl_->node, ms))
      mine.push_back(r[0].as<int>());
    if (static_cast<int>(mine.size()) < want)
      for (const auto& r :
           w.exec_prepared("take", tenant, limit, impl_->node,
                           want - static_cast<int>(mine.size()), ms))
        mine.push_back(r[0].as<int>());
    if (static_cast<int>(mine.size()) > want) {
      json_array_writer extra;
      for (auto i = static_cast<std::size_t>(want); i < mine.size(); ++i)
        extra.str(std::to_string(mine[i]));
      w.exec_prepared("give_back", tenant, impl_->node, extra.done());
      mine.resize(static_cast<std::size_t>(want));
    }
    w.commit();
    return static_cast<int>(mine.size());
  });
}

} // namespace troupe
