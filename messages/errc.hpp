#pragma once

// The closed set of error codes troupe components return. Add a code only
// when a caller reacts to it differently from the existing ones.

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>

namespace troupe {

enum class errc : std::uint8_t {
  none = 0,
  /// A write was fenced out: another node took the job (epoch moved on).
  stale_epoch,
  /// The job does not exist.
  unknown_job,
  /// The pipeline does not exist on this node.
  unknown_pipeline,
  /// Input could not be decoded or failed validation.
  invalid_payload,
  /// A payload exceeded the configured size limit.
  payload_too_large,
  /// A dependency (PostgreSQL, NATS) is unreachable; retry later.
  unavailable,
  /// The job is already in a terminal state.
  already_terminal,
  /// Anything else; the message says what.
  internal,
  /// JSON nested deeper than the configured limit.
  nesting_too_deep,
  /// An identifier (key, tenant, pipeline, correlation id) longer than the
  /// configured limit.
  key_too_long,
  /// The tenant is not configured and unknown tenants are not allowed.
  unknown_tenant,
  /// Over the tenant's submission rate; retry after the given delay.
  rate_limited,
  /// A create found the job already there (a redelivered, replayed or
  /// re-submitted id): the writer claims it instead.
  job_exists,
  /// The delivery does not match the job in the store: the id belongs to
  /// another pipeline, or a replay names a life the job is not in. The
  /// delivery is dropped; the job is left alone.
  conflict,
  /// PostgreSQL refused the data itself (SQLSTATE classes 22 and 23):
  /// writing it again cannot succeed.
  unstorable,
  /// A claim found the job waiting in the store for its time, or published
  /// again by the scheduler since this message: the delivery is stale and
  /// acked; the job is left alone.
  superseded,
};

/// Stable snake_case name of an error code, used on the wire.
const char* to_string(errc x) noexcept;

/// CAF error category atom for errc.
using errc_category = caf::atom_constant<caf::atom("troupe")>;

/// Makes a caf::error carrying a troupe code (found by CAF via ADL).
caf::error make_error(errc code);

/// Makes a caf::error carrying a troupe code and a human message.
caf::error make_error(errc code, std::string message);

/// Returns the troupe code of an error, `errc::internal` for foreign errors
/// and `errc::none` for no error.
errc code_of(const caf::error& err) noexcept;

/// Renders an error as `code: message` without needing an actor system.
std::string describe(const caf::error& err);

/// The human message of an error (describe() without the code prefix).
std::string message_of(const caf::error& err);

} // namespace troupe
