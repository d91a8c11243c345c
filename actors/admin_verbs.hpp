#pragma once

// The table of a node's admin verbs and the one function that decides what
// a request asks for (docs/wire-format.md, "Admin"). A verb is either
// *blocking* (a function that may query PostgreSQL or fan out over NATS; the
// admin actor runs it on a worker pool) or *live* (answered by the admin
// actor itself from the node's actors: `tree`, `nodes`, `stats`,
// `cancel_local`, `retry_local`).
//
// `read` verbs inspect and `control` verbs change state, so that NATS
// permissions can make an operator read-only. A control request acts only
// when its body is null or an object with no field outside the verb's list.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "messages/admin_call.hpp"

namespace troupe {

/// A blocking verb: takes the request body (JSON, may be null) and returns
/// the result, or throws admin_failure (or std::exception: code "failed").
using admin_verb = std::function<nlohmann::json(const nlohmann::json&)>;

class admin_verb_table {
public:
  struct entry {
    bool control = false;
    /// Fields a control request may carry.
    std::set<std::string> fields;
    /// Empty for a live verb.
    admin_verb fn;
  };

  void add_read(const std::string& name, admin_verb fn);
  void add_control(const std::string& name, std::set<std::string> fields,
                   admin_verb fn);
  void add_live_read(const std::string& name);
  void add_live_control(const std::string& name, std::set<std::string> fields);

  /// nullptr if there is no such verb in that class.
  const entry* find(bool control, const std::string& name) const;

  /// The names of one class, comma-separated (for error messages).
  std::string known(bool control) const;

private:
  std::map<std::string, entry> read_;
  std::map<std::string, entry> control_;
};

/// A request that names a verb and carries an acceptable body.
struct admin_routed {
  const admin_verb_table::entry* verb = nullptr;
  nlohmann::json req;
};

/// Why a request is refused: a code of docs/wire-format.md and a message.
struct admin_refusal {
  std::string code;
  std::string message;
};

/// Fields of a request body; each throws admin_failure("invalid_request")
/// when the field has the wrong type. A non-integer (1e300, "5") is refused
/// where an integer is expected: casting a huge double to an integer is
/// undefined behaviour (found by UBSan in the decoders).
std::string need_string(const nlohmann::json& req, const char* key);
std::string opt_string(const nlohmann::json& req, const char* key);
std::int64_t opt_int(const nlohmann::json& req, const char* key,
                     std::int64_t fallback);
/// Like opt_int, clamped to [lo, hi].
int opt_count(const nlohmann::json& req, const char* key, int fallback, int lo,
              int hi);

/// Decides what `call` asks for; never throws.
std::variant<admin_routed, admin_refusal>
route_admin_call(const admin_verb_table& table, const admin_call& call);

} // namespace troupe
