#pragma once

// What the store keeps of a callback token (actors/callback_stage.hpp): its
// SHA-256, computed here so that the token itself never reaches PostgreSQL
// (not as a value, not as a statement parameter in its logs).

#include <string>

namespace troupe {

/// Lowercase hex SHA-256 of `token`.
std::string token_hash(const std::string& token);

} // namespace troupe
