// `troupe shell`: the admin shell. Interactive on a terminal (line editing,
// history, completion), scripted with `-c "cmd; cmd"` or lines on stdin;
// `--json` prints one JSON document per command. It speaks only NATS, as any
// outside client would (docs/wire-format.md), so it runs from any machine
// that can reach the cluster's NATS.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>

#include "config/config_loader.hpp"
#include "messages/errc.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/shell/shell_repl.hpp"
#include "runtime/shell/shell_session.hpp"

namespace troupe {

namespace {

/// Splits `-c` text on ';' outside quotes.
std::vector<std::string> split_commands(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote)
        quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';') {
      out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  out.push_back(std::move(cur));
  return out;
}

void print(const shell_outcome& o, bool json) {
  if (json) {
    std::printf("%s\n", o.doc.dump().c_str());
  } else if (o.ok) {
    std::fputs(o.text.c_str(), stdout);
  } else {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", o.text.c_str());
  }
  std::fflush(stdout);
}

std::string env_or(const char* name, const std::string& given,
                   const std::string& fallback) {
  if (!given.empty())
    return given;
  if (auto v = std::getenv(name); v && *v)
    return v;
  return fallback;
}

/// Login and TLS from the options, else from TROUPE_NATS_*: secrets come
/// from files or the environment, never from the command line.
nats_connect_options connect_options(const shell_options& opts,
                                     const std::string& url) {
  nats_connect_options co;
  co.urls = url;
  co.name = "troupe-shell";
  // Must match the nodes' nats.inbox_prefix.
  co.inbox_prefix = env_or("TROUPE_NATS_INBOX_PREFIX", "", co.inbox_prefix);
  co.auth.user = env_or("TROUPE_NATS_USER", opts.user, "");
  co.auth.password = opts.password_file.empty()
                         ? env_or("TROUPE_NATS_PASSWORD", "", "")
                         : read_secret(opts.password_file);
  co.auth.token = opts.token_file.empty() ? env_or("TROUPE_NATS_TOKEN", "", "")
                                          : read_secret(opts.token_file);
  co.auth.creds_file = opts.creds;
  co.auth.tls_ca = opts.tls_ca;
  co.auth.tls_cert = opts.tls_cert;
  co.auth.tls_key = opts.tls_key;
  co.connect_timeout_ms = 2000;
  // A shell that cannot reach NATS says so at once rather than retrying.
  co.retry_on_failed_connect = false;
  return co;
}

void report_unreachable(const nats_connect_options& co, const caf::error& err) {
  auto why = redact_text(describe(err), co.urls);
  if (!co.auth.password.empty())
    for (std::size_t p; (p = why.find(co.auth.password)) != std::string::npos;)
      why.replace(p, co.auth.password.size(), "***");
  std::fprintf(stderr, "troupe shell: cannot reach NATS at %s: %s\n",
               redact_url(co.urls).c_str(), why.c_str());
}

/// -c commands, or one command per line on stdin; 0 if all succeeded.
int run_script(shell_session& session, const shell_options& opts) {
  int failures = 0;
  auto run_line = [&](const std::string& line) {
    auto words = shell_session::split_words(line);
    if (words.empty())
      return true;
    if (words[0] == "quit" || words[0] == "exit")
      return false;
    auto o = session.run(words);
    failures += !o.ok;
    print(o, opts.json);
    return true;
  };
  if (!opts.commands.empty()) {
    for (auto& line : split_commands(opts.commands))
      if (!run_line(line))
        break;
  } else {
    // Commands on stdin, one per line (`echo nodes | troupe shell`).
    for (std::string line; std::getline(std::cin, line);)
      if (!run_line(line))
        break;
  }
  return failures == 0 ? 0 : 1;
}

} // namespace

int cmd_shell(const shell_options& opts) {
  auto url = env_or("TROUPE_NATS_URL", opts.nats_url, "nats://127.0.0.1:4222");
  auto prefix = env_or("TROUPE_NATS_PREFIX", opts.prefix, "troupe");
  if (!is_subject_token(prefix)) {
    std::fprintf(stderr,
                 "troupe shell: --prefix '%s' is not a NATS subject "
                 "token\n",
                 prefix.c_str());
    return 2;
  }
  auto co = connect_options(opts, url);
  auto nats = nats_client::connect(co);
  if (!nats) {
    report_unreachable(co, nats.error());
    return 1;
  }
  shell_settings s;
  s.prefix = prefix;
  s.json = opts.json;
  s.timeout = std::chrono::milliseconds{opts.timeout_ms};
  bool interactive = opts.commands.empty() && isatty(STDIN_FILENO);
  s.style.color = !opts.json && !opts.no_color && isatty(STDOUT_FILENO) &&
                  !std::getenv("NO_COLOR");
  shell_session session{*nats, s};
  if (interactive)
    return run_repl(session,
                    "troupe shell — connected to " + redact_url(url) +
                        " (prefix " + prefix +
                        "). Type help, Tab completes, Ctrl-D leaves.\n");
  return run_script(session, opts);
}

} // namespace troupe
