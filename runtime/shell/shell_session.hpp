#pragma once

// The commands of `troupe shell`, speaking only the public admin, event and
// heartbeat subjects of docs/wire-format.md, exactly as an outside client
// would. Each command yields one JSON document (for --json) and text for
// humans; the interactive loop (shell_repl.cpp) and `-c` both run here.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/nats/nats_client.hpp"
#include "runtime/shell/shell_format.hpp"

namespace troupe {

/// What one command produced.
struct shell_outcome {
  bool ok = true;
  /// `{"ok":true,"command":...,...}` or `{"ok":false,"command":...,
  /// "error":{"code":...,"message":...}}`.
  nlohmann::json doc;
  /// For humans (stdout when ok, stderr otherwise).
  std::string text;
};

struct shell_settings {
  std::string prefix = "troupe";
  text_style style;
  /// Replies to read verbs that query the store or one node.
  std::chrono::milliseconds timeout{5000};
  /// How long `all` requests gather replies when the node count is unknown.
  std::chrono::milliseconds gather{700};
  bool json = false;
};

class shell_session {
public:
  shell_session(std::shared_ptr<nats_client> nats, shell_settings settings);

  /// Runs one command line (already split into words).
  shell_outcome run(const std::vector<std::string>& words);

  /// Splits a command line into words; '…' and "…" group, \ escapes.
  static std::vector<std::string> split_words(const std::string& line);

  /// Names for tab completion.
  std::vector<std::string> command_names() const;
  std::vector<std::string> pipeline_names();
  std::vector<std::string> node_ids();
  /// Flags a command accepts ("--pipeline", ...).
  std::vector<std::string> flags_of(const std::string& command) const;
  /// What the word at `position` (1 = first argument) of `command` after
  /// `previous` is: "pipeline", "node", "state" or "".
  std::string argument_kind(const std::string& command,
                            const std::string& previous,
                            std::size_t position) const;

  /// Set from a SIGINT handler to stop `watch`.
  std::atomic<bool> interrupted{false};

  /// Where `watch` writes events as they come (stdout by default).
  std::function<void(const std::string&)> print_live;

  struct command;

private:
  shell_outcome dispatch(const command& c,
                         const std::map<std::string, std::string>& flags,
                         const std::vector<std::string>& args);

  shell_outcome cmd_nodes();
  shell_outcome cmd_pipelines(bool totals_only);
  shell_outcome cmd_jobs(const std::map<std::string, std::string>& flags);
  shell_outcome cmd_job(const std::string& id, bool full);
  shell_outcome cmd_batch(const std::string& id);
  shell_outcome cmd_tree(const std::string& node, int limit);
  shell_outcome cmd_watch(const std::map<std::string, std::string>& flags);
  shell_outcome cmd_dlq(const std::map<std::string, std::string>& flags);
  shell_outcome cmd_steer(const std::string& verb, const nlohmann::json& body);
  shell_outcome cmd_node_control(const std::string& verb,
                                 const std::string& node);
  shell_outcome cmd_help(const std::string& topic) const;
  shell_outcome cmd_tenants();
  shell_outcome cmd_schedules();
  shell_outcome cmd_schedule(const std::string& action,
                             const std::string& name);
  shell_outcome cmd_tidy(const std::map<std::string, std::string>& flags);
  shell_outcome cmd_retention(const std::string& verb,
                              const std::string& job_id);

  nlohmann::json request_any(const std::string& cls, const std::string& verb,
                             const nlohmann::json& body,
                             std::chrono::milliseconds wait);
  std::vector<nlohmann::json> gather_all(const std::string& verb);

  std::shared_ptr<nats_client> nats_;
  shell_settings s_;
  /// Nodes seen up in the last `nodes` view (gathering stops at this many).
  std::size_t known_nodes_ = 0;
  std::set<std::string> pipelines_seen_;
  std::set<std::string> nodes_seen_;
};

} // namespace troupe
