#include "config/cron.hpp"

#include <ctime>
#include <sstream>
#include <vector>

#include "config/config_loader.hpp"

namespace troupe {

namespace {

struct field_spec {
  const char* name;
  int lo;
  int hi;
  const char* const* names; ///< names of lo, lo + 1, ... (or null)
  int name_count;
};

const char* const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
const char* const day_names[] = {"sun", "mon", "tue", "wed",
                                 "thu", "fri", "sat"};

/// A number or a name of the field; -1 if neither.
int value_of(std::string_view tok, const field_spec& f) {
  if (tok.empty() || tok.size() > 4)
    return -1;
  if (tok.find_first_not_of("0123456789") == std::string_view::npos)
    return std::stoi(std::string{tok});
  if (!f.names)
    return -1;
  std::string low;
  for (char c : tok)
    low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (int i = 0; i < f.name_count; ++i)
    if (low == f.names[i])
      return f.lo + i;
  return -1;
}

/// One list element: `*`, `a`, `a-b`, each with an optional `/step`.
bool parse_range(std::string_view item, const field_spec& f,
                 std::vector<bool>& set, std::string& error) {
  auto bad = [&](const std::string& why) {
    error = std::string{f.name} + " field: '" + std::string{item} + "' " + why;
    return false;
  };
  int step = 1;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    auto s = item.substr(slash + 1);
    if (s.empty() || s.size() > 4 ||
        s.find_first_not_of("0123456789") != std::string_view::npos ||
        (step = std::stoi(std::string{s})) < 1)
      return bad("has a bad step (a whole number from 1)");
    item = item.substr(0, slash);
  }
  int lo = f.lo, hi = f.hi;
  if (item != "*") {
    auto dash = item.find('-');
    lo = value_of(item.substr(0, dash), f);
    hi = dash == std::string_view::npos ? lo
                                        : value_of(item.substr(dash + 1), f);
    if (lo < f.lo || hi > f.hi || lo < 0 || hi < 0)
      return bad("is out of range " + std::to_string(f.lo) + "-" +
                 std::to_string(f.hi));
    if (lo > hi)
      return bad("is an empty range");
    if (dash == std::string_view::npos && step > 1)
      hi = f.hi; // `a/n`: from a to the end, every n
  }
  for (int v = lo; v <= hi; v += step)
    set[v - f.lo] = true;
  return true;
}

template <std::size_t N>
bool parse_field(std::string_view text, const field_spec& f,
                 std::bitset<N>& out, bool* restricted, std::string& error) {
  std::vector<bool> set(static_cast<std::size_t>(f.hi - f.lo + 1), false);
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos
                                       ? std::string_view::npos
                                       : comma - start);
    if (item.empty()) {
      error = std::string{f.name} + " field: empty list element";
      return false;
    }
    if (!parse_range(item, f, set, error))
      return false;
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  // Day-of-week 7 is Sunday as well as 0: it folds onto 0.
  for (std::size_t i = 0; i < set.size(); ++i)
    if (set[i])
      out.set((i + static_cast<std::size_t>(f.lo)) % N);
  if (restricted)
    *restricted = text != "*" && text != "?";
  return true;
}

/// `@yearly` and friends as field expressions.
std::string_view expand_shorthand(std::string_view text) {
  if (text == "@yearly" || text == "@annually")
    return "0 0 1 1 *";
  if (text == "@monthly")
    return "0 0 1 * *";
  if (text == "@weekly")
    return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight")
    return "0 0 * * *";
  if (text == "@hourly")
    return "0 * * * *";
  return text;
}

bool parse_every(std::string_view text, cron_expr& out, std::string& error) {
  text = text.substr(7); // after "@every "
  while (!text.empty() && text.front() == ' ')
    text.remove_prefix(1);
  auto d = parse_duration(text);
  if (!d || d->count() < 1000 || d->count() % 1000 != 0) {
    error = "'@every' needs a whole number of seconds, at least 1s (got '" +
            std::string{text} + "')";
    return false;
  }
  out.every_s = d->count() / 1000;
  return true;
}

std::vector<std::string> split_fields(std::string_view text) {
  std::istringstream in{std::string{text}};
  std::vector<std::string> out;
  for (std::string f; in >> f;)
    out.push_back(f);
  return out;
}

} // namespace

bool parse_cron(std::string_view text, cron_expr& out, std::string& error) {
  out = cron_expr{};
  if (text.rfind("@every ", 0) == 0)
    return parse_every(text, out, error);
  auto fields = split_fields(expand_shorthand(text));
  if (fields.size() != 5 && fields.size() != 6) {
    error = "a cron expression has 5 fields (minute hour day month weekday), "
            "6 with seconds first, or is @hourly, @daily, @every 10s ...; "
            "got " +
            std::to_string(fields.size()) + " field(s)";
    return false;
  }
  if (fields.size() == 5)
    fields.insert(fields.begin(), "0");
  static const field_spec specs[] = {
      {"seconds", 0, 59, nullptr, 0},    {"minute", 0, 59, nullptr, 0},
      {"hour", 0, 23, nullptr, 0},       {"day-of-month", 1, 31, nullptr, 0},
      {"month", 1, 12, month_names, 12}, {"day-of-week", 0, 7, day_names, 7}};
  return parse_field(fields[0], specs[0], out.seconds, nullptr, error) &&
         parse_field(fields[1], specs[1], out.minutes, nullptr, error) &&
         parse_field(fields[2], specs[2], out.hours, nullptr, error) &&
         parse_field(fields[3], specs[3], out.days, &out.days_restricted,
                     error) &&
         parse_field(fields[4], specs[4], out.months, nullptr, error) &&
         parse_field(fields[5], specs[5], out.weekdays,
                     &out.weekdays_restricted, error);
}

namespace {

bool day_matches(const cron_expr& e, const std::tm& tm) {
  bool dom = e.days.test(static_cast<std::size_t>(tm.tm_mday));
  bool dow = e.weekdays.test(static_cast<std::size_t>(tm.tm_wday));
  if (e.days_restricted && e.weekdays_restricted)
    return dom || dow;
  return dom && dow;
}

/// Moves `tm` to the start of the next unit that could match, or returns
/// true when every field matches.
bool advance(const cron_expr& e, std::tm& tm) {
  if (!e.months.test(static_cast<std::size_t>(tm.tm_mon + 1))) {
    tm.tm_mon += 1;
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  } else if (!day_matches(e, tm)) {
    tm.tm_mday += 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  } else if (!e.hours.test(static_cast<std::size_t>(tm.tm_hour))) {
    tm.tm_hour += 1;
    tm.tm_min = tm.tm_sec = 0;
  } else if (!e.minutes.test(static_cast<std::size_t>(tm.tm_min))) {
    tm.tm_min += 1;
    tm.tm_sec = 0;
  } else if (!e.seconds.test(static_cast<std::size_t>(tm.tm_sec))) {
    tm.tm_sec += 1;
  } else {
    return true;
  }
  // Normalise (timegm carries overflowing fields into the next unit).
  auto t = timegm(&tm);
  gmtime_r(&t, &tm);
  return false;
}

} // namespace

std::int64_t cron_next(const cron_expr& e, std::int64_t after) {
  if (e.every_s > 0)
    return (after / e.every_s + 1) * e.every_s;
  auto t = static_cast<std::time_t>(after + 1);
  std::tm tm{};
  gmtime_r(&t, &tm);
  auto limit = after + std::int64_t{8} * 366 * 24 * 3600;
  // Each step moves to the next month, day, hour, minute or second that
  // could match: a few thousand steps at most within the limit.
  for (int steps = 0; steps < 200000; ++steps) {
    if (advance(e, tm))
      return static_cast<std::int64_t>(timegm(&tm));
    if (static_cast<std::int64_t>(timegm(&tm)) > limit)
      return -1;
  }
  return -1;
}

std::vector<std::int64_t> slots_to_fire(const std::vector<std::int64_t>& due,
                                        std::int64_t now,
                                        const std::string& catch_up,
                                        std::int64_t late_s,
                                        std::size_t max_all) {
  if (catch_up == "all") {
    auto from = due.size() > max_all ? due.size() - max_all : 0;
    return {due.begin() + static_cast<std::ptrdiff_t>(from), due.end()};
  }
  std::vector<std::int64_t> fire;
  std::int64_t newest_missed = -1;
  for (auto s : due) {
    if (now - s <= late_s)
      fire.push_back(s);
    else
      newest_missed = s;
  }
  if (catch_up == "last" && newest_missed >= 0)
    fire.insert(fire.begin(), newest_missed);
  return fire;
}

} // namespace troupe
