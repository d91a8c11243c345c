#include "runtime/exec_stage.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <set>
#include <spawn.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/wait.h>

#include "messages/errc.hpp"
#include "runtime/blocking_pool.hpp"
#include "runtime/process.hpp"

extern "C" char** environ;

namespace troupe {

namespace {

using json = nlohmann::json;

struct exec_params {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string cwd;
  std::set<int> retryable = {75};
  std::size_t max_output = 16 * 1024 * 1024;
};

/// Shared between the stage actor's cleanup and the pool thread.
struct attempt_state {
  std::mutex mtx;
  pid_t pid = -1;
  bool cancelled = false;
  bool finished = false;

  void cancel() {
    std::lock_guard<std::mutex> guard{mtx};
    cancelled = true;
    if (pid > 0 && !finished)
      kill(-pid, SIGKILL); // the whole process group
  }
};

std::string tail_of(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : "..." + s.substr(s.size() - n);
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
    ++i;
  return s.substr(i);
}

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/// Runs one attempt to completion; never throws.
stage_outcome run_attempt(const exec_params& p, const std::string& input,
                          attempt_state& st) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    return stage_failure("spawn_failed",
                         std::string{"pipe: "} + std::strerror(errno), true);
  std::vector<char*> args;
  for (auto& a : p.argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The environment is built here rather than with setenv() in a forked
  // child: nothing that allocates may run between fork and exec in a
  // multi-threaded process.
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    auto key = kv.substr(0, eq == std::string::npos ? kv.size() : eq);
    if (std::any_of(p.env.begin(), p.env.end(),
                    [&](const auto& e) { return e.first == key; }))
      continue;
    env_store.push_back(std::move(kv));
  }
  for (auto& [k, v] : p.env)
    env_store.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& kv : env_store)
    envp.push_back(kv.data());
  envp.push_back(nullptr);
  // posix_spawn (a vfork-style clone in glibc) rather than fork: no copy of
  // the node's page tables per attempt, which made spawning cost
  // milliseconds in a large process. The child gets its own process group,
  // an empty signal mask and default signal dispositions.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  if (!p.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&fa, p.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int spawn_errno =
      posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (spawn_errno != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    auto where = p.cwd.empty() ? std::string{} : " in '" + p.cwd + "'";
    return stage_failure("spawn_failed",
                         "cannot run '" + p.argv.front() + "'" + where + ": " +
                             std::strerror(spawn_errno),
                         false);
  }
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.pid = pid;
    if (st.cancelled)
      kill(-pid, SIGKILL);
  }
  std::string stdout_buf, stderr_buf;
  bool too_large = false;
  {
    set_nonblocking(in[1]);
    set_nonblocking(out[0]);
    set_nonblocking(err[0]);
    std::size_t written = 0;
    int in_fd = in[1];
    if (input.empty()) {
      close(in_fd);
      in_fd = -1;
    }
    bool out_open = true, err_open = true;
    char buf[65536];
    while (out_open || err_open) {
      pollfd fds[3];
      int n = 0;
      if (out_open)
        fds[n++] = {out[0], POLLIN, 0};
      if (err_open)
        fds[n++] = {err[0], POLLIN, 0};
      if (in_fd >= 0)
        fds[n++] = {in_fd, POLLOUT, 0};
      if (poll(fds, static_cast<nfds_t>(n), 200) < 0 && errno != EINTR)
        break;
      for (int i = 0; i < n; ++i) {
        if (!fds[i].revents)
          continue;
        if (fds[i].fd == in_fd) {
          auto w = write(in_fd, input.data() + written, input.size() - written);
          if (w > 0)
            written += static_cast<std::size_t>(w);
          // A program that does not read its input (EPIPE) is its business.
          if (w < 0 && errno != EAGAIN) {
            close(in_fd);
            in_fd = -1;
          } else if (written == input.size()) {
            close(in_fd);
            in_fd = -1;
          }
          continue;
        }
        bool is_out = fds[i].fd == out[0];
        auto r = read(fds[i].fd, buf, sizeof(buf));
        if (r > 0) {
          auto& dst = is_out ? stdout_buf : stderr_buf;
          dst.append(buf, static_cast<std::size_t>(r));
          if (is_out && dst.size() > p.max_output) {
            too_large = true;
            std::lock_guard<std::mutex> guard{st.mtx};
            kill(-pid, SIGKILL);
          }
          if (!is_out && stderr_buf.size() > 64 * 1024)
            stderr_buf = stderr_buf.substr(stderr_buf.size() - 32 * 1024);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          (is_out ? out_open : err_open) = false;
        }
      }
      if (too_large)
        break;
    }
    if (in_fd >= 0)
      close(in_fd);
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  bool cancelled;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.finished = true;
    cancelled = st.cancelled;
  }
  // Leave nothing of the attempt behind (background children included).
  kill(-pid, SIGKILL);
  auto prog = p.argv.front();
  auto err_text = trim(tail_of(stderr_buf, 2048));
  if (too_large)
    return stage_failure("output_too_large",
                         "'" + prog + "' wrote more than " +
                             std::to_string(p.max_output) + " bytes to stdout",
                         false);
  if (cancelled)
    return stage_failure("cancelled", "attempt abandoned", false);
  if (WIFSIGNALED(status)) {
    auto sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return stage_failure("signal",
                         "'" + prog + "' killed by SIG" +
                             (name ? name : std::to_string(sig)) +
                             (err_text.empty() ? "" : ": " + err_text),
                         true);
  }
  int code = WEXITSTATUS(status);
  if (code != 0) {
    std::string msg = "exit " + std::to_string(code);
    if (!err_text.empty())
      msg += ": " + err_text;
    return stage_failure("exit_code", msg, p.retryable.count(code) > 0);
  }
  auto text = trim(stdout_buf);
  if (text.empty())
    return stage_success("{}");
  auto doc = json::parse(text, nullptr, false);
  if (doc.is_discarded())
    return stage_failure("invalid_output",
                         "'" + prog +
                             "' did not write one JSON document on "
                             "stdout; it began with: " +
                             text.substr(0, 200),
                         false);
  return stage_success(doc.dump());
}

class exec_stage final : public stage_kind {
public:
  exec_stage(exec_params p, std::shared_ptr<blocking_pool> pool)
      : params_(std::move(p)), pool_(std::move(pool)) {}

  void start(caf::event_based_actor* self,
             const stage_request& req) const override {
    auto st = std::make_shared<attempt_state>();
    self->attach_functor([st] { st->cancel(); });
    auto handle = caf::actor_cast<caf::actor>(self);
    auto params = params_;
    auto input = req.input;
    auto posted = pool_->post([st, handle, params, input] {
      {
        std::lock_guard<std::mutex> guard{st->mtx};
        if (st->cancelled)
          return; // abandoned while queued: never start it
      }
      caf::anon_send(handle, run_attempt(params, input, *st));
    });
    if (!posted)
      self->send(self,
                 stage_failure("unavailable", "node is shutting down", true));
  }

private:
  exec_params params_;
  std::shared_ptr<blocking_pool> pool_;
};

caf::error bad(const stage_config& sc, const std::string& msg) {
  return make_error(errc::invalid_payload,
                    "stage '" + sc.name + "' (exec): " + msg);
}

} // namespace

stage_kind_factory
make_exec_stage_factory(std::shared_ptr<blocking_pool> pool) {
  // Writing the input to a program that exits without reading it must be an
  // EPIPE for that attempt, not a SIGPIPE that kills the node. Children get
  // the default disposition back before exec.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  return [pool](const stage_config& sc)
             -> caf::expected<std::shared_ptr<const stage_kind>> {
    exec_params p;
    const auto& j = sc.params;
    auto cmd = j.find("command");
    if (cmd == j.end() || !cmd->is_array() || cmd->empty())
      return bad(sc, "command must be a non-empty array of strings");
    for (auto& a : *cmd) {
      if (!a.is_string())
        return bad(sc, "command must be a non-empty array of strings");
      p.argv.push_back(a.get<std::string>());
    }
    if (auto e = j.find("env"); e != j.end()) {
      if (!e->is_object())
        return bad(sc, "env must be a table of strings");
      for (auto& [k, v] : e->items()) {
        if (!v.is_string())
          return bad(sc, "env." + k + " must be a string");
        p.env.emplace_back(k, v.get<std::string>());
      }
    }
    if (auto c = j.find("cwd"); c != j.end()) {
      if (!c->is_string())
        return bad(sc, "cwd must be a string");
      p.cwd = c->get<std::string>();
    }
    if (auto r = j.find("retryable_exit_codes"); r != j.end()) {
      if (!r->is_array())
        return bad(sc, "retryable_exit_codes must be an array of integers");
      p.retryable.clear();
      for (auto& x : *r) {
        if (!x.is_number_integer())
          return bad(sc, "retryable_exit_codes must be an array of integers");
        p.retryable.insert(x.get<int>());
      }
    }
    if (auto m = j.find("max_output_bytes"); m != j.end()) {
      if (!m->is_number_integer() || m->get<std::int64_t>() < 1)
        return bad(sc, "max_output_bytes must be a positive integer");
      p.max_output = m->get<std::size_t>();
    }
    if (p.argv[0].find('/') == std::string::npos &&
        find_program(p.argv[0]).empty())
      return bad(sc, "program '" + p.argv[0] + "' not found on PATH");
    return std::shared_ptr<const stage_kind>{
        std::make_shared<exec_stage>(std::move(p), pool)};
  };
}

} // namespace troupe
