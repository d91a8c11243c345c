#pragma once

// Cron expressions of `[schedules.<name>]` (docs/scheduling.md): five
// fields (minute hour day-of-month month day-of-week), or six with a
// leading seconds field; `*`, `a`, `a-b`, `*/n`, `a-b/n`, lists, month and
// weekday names; shorthands `@yearly` `@monthly` `@weekly` `@daily`
// `@hourly` and `@every <duration>`. Pure: times are seconds of a naive
// wall clock (the schedule's time zone is applied by the caller).

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe {

struct cron_expr {
  /// `@every`: slots every this many seconds, counted from the epoch (so
  /// that every node agrees on them); 0 for a field expression.
  std::int64_t every_s = 0;
  std::bitset<60> seconds;
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;    ///< 1..31
  std::bitset<13> months;  ///< 1..12
  std::bitset<7> weekdays; ///< 0 (Sunday)..6
  /// Day-of-month or day-of-week restricted: when both are, a day matches
  /// if either does (as in Vixie cron).
  bool days_restricted = false;
  bool weekdays_restricted = false;
};

/// Parses `text`; on failure returns false and sets `error` to what is
/// wrong and where (the field and the token).
bool parse_cron(std::string_view text, cron_expr& out, std::string& error);

/// The first slot strictly after `after` (naive seconds), or -1 if none
/// within 8 years (`0 0 30 2 *`: February 30th never comes).
std::int64_t cron_next(const cron_expr& e, std::int64_t after);

/// Which due slots (naive seconds, oldest first) a schedule fires at `now`.
/// A slot more than `late_s` late was missed (no node ran the schedule
/// then): "none" fires only slots on time, "last" those and the newest
/// missed one, "all" every slot (the newest `max_all`).
std::vector<std::int64_t> slots_to_fire(const std::vector<std::int64_t>& due,
                                        std::int64_t now,
                                        const std::string& catch_up,
                                        std::int64_t late_s = 2,
                                        std::size_t max_all = 100);

} // namespace troupe
