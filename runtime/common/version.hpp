#pragma once

namespace troupe {

/// troupe's version string ("0.1.0").
const char* version() noexcept;

} // namespace troupe
