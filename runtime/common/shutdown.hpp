#pragma once

// Process-wide shutdown request, raised by SIGINT/SIGTERM or by code.

#include <chrono>

namespace troupe {

/// Routes SIGINT and SIGTERM into the shutdown request. Call once, early in
/// main, before any other thread starts (the signals are blocked in every
/// thread and received by one watcher thread, so no code runs in a signal
/// handler).
void install_shutdown_handlers();

/// Raises the shutdown request (idempotent).
void request_shutdown();

/// True once shutdown was requested.
bool shutdown_requested() noexcept;

/// Waits up to `timeout` for a shutdown request; true if it was requested.
bool wait_for_shutdown(std::chrono::milliseconds timeout);

/// Which signal raised the request (0 if none or raised by code).
int shutdown_signal() noexcept;

} // namespace troupe
