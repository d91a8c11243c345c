// [schedules.<name>]: cron schedules (docs/scheduling.md).
#include <ctime>
#include <sys/stat.h>

#include "config/config_sections.hpp"
#include "config/cron.hpp"

namespace troupe::config_detail {

namespace {

/// A time zone PostgreSQL and the system both know: UTC, or a name of the
/// system's zone database (tzdata).
bool known_zone(const std::string& tz) {
  if (tz == "UTC")
    return true;
  if (tz.empty() || tz.find("..") != std::string::npos || tz[0] == '/')
    return false;
  struct stat st {};
  return stat(("/usr/share/zoneinfo/" + tz).c_str(), &st) == 0 &&
         S_ISREG(st.st_mode);
}

/// `key` must be one of `allowed` (quoted in the message).
void read_choice(reader& r, const toml::table& t, const std::string& path,
                 const char* key, std::string& out,
                 std::initializer_list<const char*> allowed) {
  r.read(t, path, key, out);
  std::string list;
  for (auto a : allowed) {
    if (out == a)
      return;
    list += (list.empty() ? "\"" : ", \"") + std::string{a} + "\"";
  }
  r.problem(t.get(key), path + "." + key,
            "must be one of " + list + " (got \"" + out + "\")");
}

void read_schedule(reader& r, const std::string& name, const toml::node& n,
                   troupe_config& cfg) {
  std::string path;
  auto* t = named_table(r, "schedules", name, n,
                        "schedule names must be letters, digits, '_' or '-' "
                        "(they name the jobs: <schedule>@<slot>)",
                        path);
  if (!t)
    return;
  r.check_keys(
      *t, path,
      {"cron", "timezone", "pipeline", "payload", "overlap", "catch_up"});
  schedule_config sc;
  sc.name = name;
  r.read(*t, path, "cron", sc.cron);
  cron_expr e;
  std::string why;
  if (!t->get("cron"))
    r.problem(&n, path, "missing key 'cron' (e.g. cron = \"*/5 * * * *\")");
  else if (!parse_cron(sc.cron, e, why))
    r.problem(t->get("cron"), path + ".cron", why);
  else if (cron_next(e, static_cast<std::int64_t>(std::time(nullptr))) < 0)
    r.problem(t->get("cron"), path + ".cron",
              "'" + sc.cron + "' never fires (no such day within 8 years)");
  r.read(*t, path, "timezone", sc.timezone);
  if (!known_zone(sc.timezone))
    r.problem(t->get("timezone"), path + ".timezone",
              "unknown time zone '" + sc.timezone +
                  "' (UTC, or a name such as Europe/Paris)");
  r.read(*t, path, "pipeline", sc.pipeline);
  if (!cfg.pipelines.count(sc.pipeline))
    r.problem(t->get("pipeline") ? t->get("pipeline") : &n, path + ".pipeline",
              "must name a pipeline of this configuration (got '" +
                  sc.pipeline + "')");
  if (auto* p = t->get("payload"))
    sc.payload = to_json(*p).dump();
  read_choice(r, *t, path, "overlap", sc.overlap, {"allow", "skip"});
  read_choice(r, *t, path, "catch_up", sc.catch_up, {"none", "last", "all"});
  cfg.schedules[name] = std::move(sc);
}

} // namespace

void read_schedules(reader& r, const toml::table& t, troupe_config& cfg) {
  for (auto&& [k, v] : t)
    read_schedule(r, std::string{k.str()}, v, cfg);
}

} // namespace troupe::config_detail
