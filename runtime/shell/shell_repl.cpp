// The interactive mode of `troupe shell`: line editing, history kept between
// runs and tab completion of commands, flags, pipeline names, node ids and
// job states, through libedit's readline interface.
#include "runtime/shell/shell_repl.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <editline/readline.h>

namespace troupe {

namespace {

shell_session* current = nullptr;
std::vector<std::string> candidates;

char* next_candidate(const char* text, int state) {
  static std::size_t index = 0;
  if (state == 0)
    index = 0;
  std::size_t len = std::strlen(text);
  while (index < candidates.size()) {
    const auto& c = candidates[index++];
    if (c.compare(0, len, text) == 0)
      return strdup(c.c_str());
  }
  return nullptr;
}

char** complete(const char* text, int start, int) {
  rl_attempted_completion_over = 1; // never fall back to file names
  candidates.clear();
  if (!current)
    return nullptr;
  auto before = shell_session::split_words(
      std::string{rl_line_buffer, static_cast<std::size_t>(start)});
  if (before.empty()) {
    candidates = current->command_names();
  } else if (text[0] == '-') {
    candidates = current->flags_of(before[0]);
  } else {
    std::size_t position = 0;
    for (std::size_t i = 1; i < before.size(); ++i)
      if (before[i].rfind("--", 0) != 0 && before[i - 1].rfind("--", 0) != 0)
        ++position;
    auto kind = current->argument_kind(before[0], before.back(), position + 1);
    if (kind == "pipeline")
      candidates = current->pipeline_names();
    else if (kind == "node")
      candidates = current->node_ids();
    else if (kind == "command")
      candidates = current->command_names();
    else if (kind == "state")
      candidates = {"scheduled", "queued",    "running",       "retrying",
                    "waiting",   "succeeded", "dead_lettered", "cancelled"};
  }
  return rl_completion_matches(text, next_candidate);
}

volatile std::sig_atomic_t interrupted = 0;

void on_sigint(int) {
  interrupted = 1;
  if (current)
    current->interrupted = true;
}

std::string history_path() {
  if (auto p = std::getenv("TROUPE_SHELL_HISTORY"))
    return p;
  if (auto home = std::getenv("HOME"))
    return std::string{home} + "/.troupe_history";
  return {};
}

} // namespace

int run_repl(shell_session& session, const std::string& banner) {
  current = &session;
  rl_readline_name = "troupe";
  rl_attempted_completion_function = complete;
  // Ctrl-C stops `watch` (and clears the line); it never kills the shell.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  auto hist = history_path();
  using_history();
  stifle_history(1000);
  if (!hist.empty())
    read_history(hist.c_str());
  std::fputs(banner.c_str(), stdout);
  int failures = 0;
  for (;;) {
    interrupted = 0;
    session.interrupted = false;
    char* raw = readline("troupe> ");
    if (!raw) {
      if (interrupted) {
        std::fputs("\n", stdout);
        continue;
      }
      std::fputs("\n", stdout);
      break; // Ctrl-D
    }
    std::string line{raw};
    std::free(raw);
    auto words = shell_session::split_words(line);
    if (words.empty())
      continue;
    add_history(line.c_str());
    if (!hist.empty())
      write_history(hist.c_str());
    if (words[0] == "quit" || words[0] == "exit")
      break;
    auto o = session.run(words);
    failures += !o.ok;
    if (o.ok)
      std::fputs(o.text.c_str(), stdout);
    else
      std::fprintf(stdout, "%s\n", o.text.c_str());
    std::fflush(stdout);
  }
  current = nullptr;
  return failures == 0 ? 0 : 1;
}

} // namespace troupe
