#include "runtime/cli/local_servers.hpp"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <pwd.h>
#include <thread>
#include <unistd.h>

#include <sys/stat.h>

#include "messages/errc.hpp"
#include "runtime/exec/process.hpp"

namespace troupe {

namespace {

using namespace std::chrono_literals;

caf::error fail(std::string msg) {
  return make_error(errc::unavailable, std::move(msg));
}

caf::error make_dirs(const std::string& path) {
  std::string cur;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
        return fail("cannot create directory " + cur);
    }
    if (i < path.size())
      cur += path[i];
  }
  return caf::none;
}

std::string absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/')
    return path;
  char buf[4096];
  if (!getcwd(buf, sizeof(buf)))
    return path;
  return std::string{buf} + "/" + path;
}

std::string tail(const std::string& file, std::size_t max = 2000) {
  std::ifstream in{file};
  std::string all{std::istreambuf_iterator<char>{in}, {}};
  return all.size() > max ? all.substr(all.size() - max) : all;
}

bool running_as_root() {
  return geteuid() == 0;
}

/// Prefixes a command so that it runs as `postgres` when we are root
/// (initdb and postgres refuse to run as root).
std::vector<std::string> as_postgres(std::vector<std::string> argv) {
  if (!running_as_root())
    return argv;
  argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  return argv;
}

} // namespace

std::string pg_bin_dir() {
  for (auto dir : {"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                   "/usr/lib/postgresql/17/bin"})
    if (access((std::string{dir} + "/pg_ctl").c_str(), X_OK) == 0)
      return dir;
  return "";
}

// -- nats ---------------------------------------------------------------------

local_nats::~local_nats() {
  stop();
}

caf::error local_nats::start(const std::string& dir, int port) {
  dir_ = absolute(dir) + "/nats";
  port_ = port;
  return launch({});
}

caf::error local_nats::start_clustered(const std::string& dir, int port,
                                       const std::string& name,
                                       int cluster_port,
                                       const std::string& routes,
                                       std::vector<std::string> extra) {
  dir_ = absolute(dir) + "/nats-" + name;
  port_ = port;
  std::vector<std::string> args{
      "-n",
      name,
      "--cluster_name",
      "troupe",
      "--cluster",
      "nats://127.0.0.1:" + std::to_string(cluster_port),
      "--routes",
      routes};
  args.insert(args.end(), extra.begin(), extra.end());
  return launch(std::move(args));
}

caf::error local_nats::launch(std::vector<std::string> extra_args) {
  auto port = port_;
  if (find_program("nats-server").empty())
    return fail("nats-server not found: run scripts/bootstrap.sh");
  if (!port_free(port))
    return fail("port " + std::to_string(port) +
                " on 127.0.0.1 is in use; pick another with --nats-port");
  if (auto err = make_dirs(dir_))
    return err;
  auto log = dir_ + "/nats.log";
  std::vector<std::string> argv{"nats-server", "-js",
                                "-a",          "127.0.0.1",
                                "-p",          std::to_string(port),
                                "-sd",         dir_ + "/jetstream",
                                "-l",          log,
                                "-P",          dir_ + "/nats.pid"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto pid = spawn_process(argv, dir_ + "/nats.out");
  if (!pid)
    return pid.error();
  pid_ = *pid;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!port_open(port)) {
    if (wait_process(pid_, 0ms) != -1) {
      pid_ = -1;
      return fail("nats-server exited at start-up:\n" + tail(log) +
                  tail(dir_ + "/nats.out"));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      stop();
      return fail("nats-server did not listen on port " + std::to_string(port) +
                  " within 15 s:\n" + tail(log));
    }
    std::this_thread::sleep_for(20ms);
  }
  return caf::none;
}

void local_nats::stop() {
  if (pid_ > 0) {
    stop_process(pid_, 10s);
    pid_ = -1;
  }
}

std::string local_nats::url() const {
  return "nats://127.0.0.1:" + std::to_string(port_);
}

// -- postgres -----------------------------------------------------------------

local_postgres::~local_postgres() {
  stop();
}

caf::error local_postgres::start(const std::string& dir, int port) {
  dir_ = absolute(dir) + "/pg";
  port_ = port;
  auto bin = pg_bin_dir();
  if (bin.empty())
    return fail("PostgreSQL server binaries not found (expected "
                "/usr/lib/postgresql/15/bin): run scripts/bootstrap.sh");
  if (!port_free(port))
    return fail("port " + std::to_string(port) +
                " on 127.0.0.1 is in use; pick another with --pg-port");
  auto data = dir_ + "/data";
  auto run = dir_ + "/run";
  if (auto err = make_dirs(run))
    return err;
  if (running_as_root()) {
    // The postgres user must own its data, socket and log directories,
    // and be able to reach them.
    auto r = run_command({"chown", "-R", "postgres:postgres", dir_}, 30s);
    if (r.exit_code != 0)
      return fail("cannot hand " + dir_ + " to user postgres: " + r.output);
    chmod(absolute(dir_ + "/..").c_str(), 0755);
  }
  if (access((data + "/PG_VERSION").c_str(), F_OK) != 0) {
    auto r = run_command(
        as_postgres({bin + "/initdb", "-D", data, "-A", "trust", "-U",
                     "postgres", "-E", "UTF8", "--no-instructions"}),
        120s);
    if (r.exit_code != 0)
      return fail("initdb failed:\n" + r.output);
  }
  auto log = run + "/pg.log";
  // TROUPE_PG_OPTIONS adds server settings for profiling, e.g.
  // "-c shared_preload_libraries=pg_stat_statements" (docs/benchmarks.md).
  const char* extra = std::getenv("TROUPE_PG_OPTIONS");
  auto options = "-p " + std::to_string(port) + " -k " + run +
                 " -c listen_addresses=127.0.0.1" +
                 (extra && *extra ? " " + std::string{extra} : "");
  auto r = run_command(as_postgres({bin + "/pg_ctl", "-D", data, "-l", log,
                                    "-w", "-t", "60", "-o", options, "start"}),
                       90s);
  if (r.exit_code != 0)
    return fail("PostgreSQL did not start:\n" + r.output + "\n" + tail(log));
  started_ = true;
  // Create the database once; psql talks TCP to 127.0.0.1 only.
  auto psql = bin + "/psql";
  if (access(psql.c_str(), X_OK) != 0)
    psql = "psql";
  auto exists = run_command({psql, "-h", "127.0.0.1", "-p",
                             std::to_string(port), "-U", "postgres", "-tAc",
                             "select 1 from pg_database where datname = "
                             "'troupe'"},
                            30s);
  if (exists.output.find('1') == std::string::npos) {
    auto c = run_command({psql, "-h", "127.0.0.1", "-p", std::to_string(port),
                          "-U", "postgres", "-c", "create database troupe"},
                         30s);
    if (c.exit_code != 0) {
      stop();
      return fail("cannot create database troupe: " + c.output);
    }
  }
  return caf::none;
}

void local_postgres::stop() {
  if (!started_)
    return;
  started_ = false;
  auto bin = pg_bin_dir();
  auto data = dir_ + "/data";
  auto r = run_command(as_postgres({bin + "/pg_ctl", "-D", data, "-m", "fast",
                                    "-w", "-t", "60", "stop"}),
                       90s);
  (void)r;
}

std::string local_postgres::url() const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/troupe";
}

pid_t local_postgres::pid() const {
  std::ifstream in{dir_ + "/data/postmaster.pid"};
  pid_t pid = -1;
  in >> pid;
  return in ? pid : -1;
}

} // namespace troupe
