#pragma once

// The shell's command table (runtime/shell/shell_commands.cpp): name, usage,
// help, options and completion of every command.

#include <string>
#include <vector>

#include "runtime/shell/shell_session.hpp"

namespace troupe {

struct shell_session::command {
  std::string name;
  std::string usage;
  std::string summary;
  /// Flags taking a value, and flags that are switches.
  std::vector<std::string> value_flags;
  std::vector<std::string> switches;
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  /// Kind of the positional argument for completion ("pipeline", "node").
  std::string arg_kind;
};

namespace shell_detail {

/// Every command, in the order `help` lists them.
const std::vector<shell_session::command>& commands();

/// The command called `name`, or null.
const shell_session::command* find_command(const std::string& name);

} // namespace shell_detail

} // namespace troupe
