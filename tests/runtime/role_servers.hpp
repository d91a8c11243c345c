#pragma once

// PostgreSQL and a nats-server with the roles of
// config/nats-server.example.conf (node, publisher, viewer, admin), on
// loopback, for tests that act as the least-privileged client would.

#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/cli/local_servers.hpp"
#include "runtime/nats/nats_client.hpp"

namespace troupe::test {

/// A NATS user added to the example's, with its own permissions block
/// (nats-server syntax, e.g. `{ publish = ["troupe.jobs.billing"] }`).
struct extra_user {
  std::string name;
  std::string password;
  std::string permissions;
};

class role_servers {
public:
  /// The example's users and their passwords (files `<dir>/<user>.pw`).
  static constexpr const char* node_pw = "node-Pw-7731";
  static constexpr const char* publisher_pw = "pub-Pw-2290";
  static constexpr const char* viewer_pw = "view-Pw-5512";
  static constexpr const char* admin_pw = "admin-Pw-9046";
  static constexpr const char* acme_pw = "acme-Pw-6318";

  role_servers() = default;
  ~role_servers();
  role_servers(const role_servers&) = delete;
  role_servers& operator=(const role_servers&) = delete;

  /// Starts both servers under a fresh directory; an empty string on
  /// success, else what failed.
  std::string start(const std::vector<extra_user>& extra = {});

  const std::string& dir() const { return dir_; }
  int nats_port() const { return nats_port_; }
  std::string nats_url() const;
  std::string pg_url() const { return pg_.url(); }
  local_postgres& pg() { return pg_; }

  /// Connects to NATS as `user`, with replies under `inbox`.
  caf::expected<std::shared_ptr<nats_client>>
  connect_as(const std::string& user, const std::string& password,
             const std::string& inbox = "_INBOX") const;

  /// A node configuration (TOML) logging in as `node`, with `rest`
  /// (pipelines and other sections) appended.
  std::string node_config(const std::string& node_id,
                          const std::string& rest) const;

private:
  std::string dir_;
  int nats_port_ = 0;
  pid_t nats_pid_ = -1;
  local_postgres pg_;
};

} // namespace troupe::test
