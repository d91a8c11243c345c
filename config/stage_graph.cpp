#include "config/stage_graph.hpp"

#include <algorithm>
#include <map>

namespace troupe {

namespace {

using index_map = std::map<std::string, std::int32_t>;

index_map index_names(const pipeline_config& pc) {
  index_map out;
  for (std::size_t i = 0; i < pc.stages.size(); ++i)
    out.emplace(pc.stages[i].name, static_cast<std::int32_t>(i));
  return out;
}

/// The stages stage `i` needs; unknown names are skipped (reported by
/// check_stage_graph).
std::vector<std::int32_t> needs_of(const pipeline_config& pc,
                                   const index_map& names, std::size_t i) {
  std::vector<std::int32_t> out;
  const auto& after = pc.stages[i].after;
  if (!after) {
    if (i > 0)
      out.push_back(static_cast<std::int32_t>(i - 1));
    return out;
  }
  for (const auto& n : *after)
    if (auto it = names.find(n); it != names.end())
      out.push_back(it->second);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::vector<std::int32_t>> all_needs(const pipeline_config& pc) {
  auto names = index_names(pc);
  std::vector<std::vector<std::int32_t>> out;
  for (std::size_t i = 0; i < pc.stages.size(); ++i)
    out.push_back(needs_of(pc, names, i));
  return out;
}

/// Problems with the names in stage `i`'s `after`.
void check_names(const pipeline_config& pc, const index_map& names,
                 std::size_t i, std::vector<stage_graph_problem>& out) {
  const auto& sc = pc.stages[i];
  if (!sc.after)
    return;
  auto at = static_cast<std::int32_t>(i);
  std::vector<std::string> seen;
  for (const auto& n : *sc.after) {
    if (n == sc.name)
      out.push_back({at, "a stage cannot come after itself"});
    else if (!names.count(n))
      out.push_back({at, "unknown stage \"" + n + "\""});
    else if (std::find(seen.begin(), seen.end(), n) != seen.end())
      out.push_back({at, "names \"" + n + "\" twice"});
    seen.push_back(n);
  }
}

/// Depth-first search for a cycle through `at`; fills `path` with it.
bool find_cycle(const std::vector<std::vector<std::int32_t>>& needs,
                std::int32_t at, std::vector<int>& mark,
                std::vector<std::int32_t>& path) {
  mark[at] = 1; // on the current path
  path.push_back(at);
  for (auto n : needs[at]) {
    if (mark[n] == 1) {
      path.erase(path.begin(),
                 std::find(path.begin(), path.end(), n)); // the cycle only
      path.push_back(n);
      return true;
    }
    if (mark[n] == 0 && find_cycle(needs, n, mark, path))
      return true;
  }
  mark[at] = 2;
  path.pop_back();
  return false;
}

std::string describe_cycle(const pipeline_config& pc,
                           const std::vector<std::int32_t>& path) {
  std::string out = "cycle: ";
  // `path` follows needs (a stage, then what it needs); say it in the
  // order the stages would run.
  for (auto it = path.rbegin(); it != path.rend(); ++it)
    out += (it == path.rbegin() ? "" : " -> ") + pc.stages[*it].name;
  return out;
}

bool check_cycles(const pipeline_config& pc,
                  const std::vector<std::vector<std::int32_t>>& needs,
                  std::vector<stage_graph_problem>& out) {
  std::vector<int> mark(needs.size(), 0);
  for (std::size_t i = 0; i < needs.size(); ++i) {
    std::vector<std::int32_t> path;
    if (mark[i] == 0 &&
        find_cycle(needs, static_cast<std::int32_t>(i), mark, path)) {
      out.push_back({path.front(), describe_cycle(pc, path)});
      return false;
    }
  }
  return true;
}

/// Stage `i` needs only stages listed before it, so that the list is an
/// order the stages can run in (a replay from a stage re-runs everything
/// listed from it on, which then includes all that depends on it).
void check_order(const pipeline_config& pc,
                 const std::vector<std::vector<std::int32_t>>& needs,
                 std::vector<stage_graph_problem>& out) {
  for (std::size_t i = 0; i < needs.size(); ++i)
    for (auto n : needs[i])
      if (n > static_cast<std::int32_t>(i))
        out.push_back({static_cast<std::int32_t>(i),
                       "needs \"" + pc.stages[n].name +
                           "\", which is listed after it (list each stage "
                           "after the stages it needs)"});
}

std::vector<std::vector<std::int32_t>>
all_ancestors(const std::vector<std::vector<std::int32_t>>& needs) {
  // Stages only need earlier ones (check_order), so one pass in list order
  // sees every stage's ancestors complete.
  std::vector<std::vector<std::int32_t>> out(needs.size());
  for (std::size_t i = 0; i < needs.size(); ++i) {
    std::vector<bool> in(needs.size(), false);
    for (auto n : needs[i]) {
      in[n] = true;
      for (auto a : out[n])
        in[a] = true;
    }
    for (std::size_t k = 0; k < in.size(); ++k)
      if (in[k])
        out[i].push_back(static_cast<std::int32_t>(k));
  }
  return out;
}

void check_last(const pipeline_config& pc,
                const std::vector<std::vector<std::int32_t>>& ancestors,
                std::vector<stage_graph_problem>& out) {
  if (ancestors.empty())
    return;
  auto last = static_cast<std::int32_t>(ancestors.size() - 1);
  const auto& before = ancestors[last];
  for (std::int32_t i = 0; i < last; ++i)
    if (!std::binary_search(before.begin(), before.end(), i)) {
      out.push_back({last, "is the last stage, whose output is the job's "
                           "result, so it must come after every other "
                           "stage; it does not come after \"" +
                               pc.stages[i].name + "\""});
      return;
    }
}

} // namespace

std::vector<std::int32_t>
stage_graph::ready(const std::vector<bool>& done) const {
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < needs.size(); ++i) {
    if (done[i])
      continue;
    bool ok = std::all_of(needs[i].begin(), needs[i].end(),
                          [&](std::int32_t n) { return done[n]; });
    if (ok)
      out.push_back(static_cast<std::int32_t>(i));
  }
  return out;
}

std::vector<stage_graph_problem> check_stage_graph(const pipeline_config& pc) {
  std::vector<stage_graph_problem> out;
  auto names = index_names(pc);
  for (std::size_t i = 0; i < pc.stages.size(); ++i)
    check_names(pc, names, i, out);
  if (!out.empty())
    return out;
  auto needs = all_needs(pc);
  if (!check_cycles(pc, needs, out))
    return out;
  check_order(pc, needs, out);
  if (out.empty())
    check_last(pc, all_ancestors(needs), out);
  return out;
}

stage_graph make_stage_graph(const pipeline_config& pc) {
  stage_graph g;
  g.needs = all_needs(pc);
  g.ancestors = all_ancestors(g.needs);
  for (std::size_t i = 0; i < g.needs.size(); ++i) {
    std::vector<std::int32_t> linear;
    if (i > 0)
      linear.push_back(static_cast<std::int32_t>(i - 1));
    g.parallel = g.parallel || g.needs[i] != linear;
  }
  return g;
}

} // namespace troupe
