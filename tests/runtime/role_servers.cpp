#include "role_servers.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "child_process.hpp"
#include "messages/errc.hpp"
#include "runtime/exec/process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/test_servers.hpp"

namespace troupe::test {

using namespace std::chrono_literals;

namespace {

/// The example's authorization block with passwords inline and `extra`
/// users appended.
std::string roles_block(const std::vector<extra_user>& extra) {
  auto roles = read_file(TROUPE_SOURCE_DIR "/config/nats-server.example.conf");
  auto at = roles.find("authorization {");
  if (at == std::string::npos)
    return {};
  roles = roles.substr(at);
  for (auto [var, pw] :
       {std::pair{"$TROUPE_NODE_PASSWORD", role_servers::node_pw},
        {"$TROUPE_PUBLISHER_PASSWORD", role_servers::publisher_pw},
        {"$TROUPE_VIEWER_PASSWORD", role_servers::viewer_pw},
        {"$TROUPE_ADMIN_PASSWORD", role_servers::admin_pw},
        {"$TROUPE_ACME_PASSWORD", role_servers::acme_pw}})
    roles.replace(roles.find(var), std::strlen(var),
                  std::string{"\""} + pw + "\"");
  auto users = roles.find("users = [");
  if (users == std::string::npos)
    return {};
  users += std::strlen("users = [");
  for (auto& u : extra)
    roles.insert(users, "\n    {user: " + u.name + ", password: \"" +
                            u.password + "\", permissions: " + u.permissions +
                            "}");
  return roles;
}

} // namespace

role_servers::~role_servers() {
  if (nats_pid_ > 0)
    stop_process(nats_pid_, 10s);
  pg_.stop();
  if (!dir_.empty() && !std::getenv("TROUPE_KEEP_TEST_DIRS"))
    run_command({"rm", "-rf", dir_}, 60s);
}

std::string role_servers::start(const std::vector<extra_user>& extra) {
  char tmpl[] = "/tmp/troupe-roles-XXXXXX";
  if (!mkdtemp(tmpl))
    return "mkdtemp failed";
  dir_ = tmpl;
  if (auto err = pg_.start(dir_, free_port()))
    return "PostgreSQL: " + describe(err);
  auto roles = roles_block(extra);
  if (roles.empty())
    return "config/nats-server.example.conf has no authorization block";
  nats_port_ = free_port();
  write_file(dir_ + "/nats.conf",
             "listen: 127.0.0.1:" + std::to_string(nats_port_) +
                 "\njetstream { store_dir: \"" + dir_ + "/js\" }\n" + roles);
  auto pid = spawn_process({"nats-server", "-c", dir_ + "/nats.conf"},
                           dir_ + "/nats.log");
  if (!pid)
    return "cannot start nats-server";
  nats_pid_ = *pid;
  test::eventually([&] { return port_open(nats_port_); },
                   std::chrono::milliseconds{5000},
                   std::chrono::milliseconds{50});
  if (!port_open(nats_port_))
    return "nats-server did not start: " + read_file(dir_ + "/nats.log");
  for (auto [user, pw] : {std::pair{"node", node_pw},
                          {"publisher", publisher_pw},
                          {"viewer", viewer_pw},
                          {"admin", admin_pw},
                          {"acme", acme_pw}})
    write_file(dir_ + "/" + user + ".pw", std::string{pw} + "\n");
  return {};
}

std::string role_servers::nats_url() const {
  return "nats://127.0.0.1:" + std::to_string(nats_port_);
}

caf::expected<std::shared_ptr<nats_client>>
role_servers::connect_as(const std::string& user, const std::string& password,
                         const std::string& inbox) const {
  nats_connect_options o;
  o.urls = nats_url();
  o.auth.user = user;
  o.auth.password = password;
  o.inbox_prefix = inbox;
  return nats_client::connect(o);
}

std::string role_servers::node_config(const std::string& node_id,
                                      const std::string& rest) const {
  return "[node]\nid = \"" + node_id +
         "\"\nhttp = \"127.0.0.1:0\"\ndrain_grace = \"1s\"\n\n[nats]\n"
         "url = \"" +
         nats_url() + "\"\nuser = \"node\"\npassword_file = \"" + dir_ +
         "/node.pw\"\n\n[postgres]\nurl = \"" + pg_.url() + "\"\n\n" + rest;
}

} // namespace troupe::test
