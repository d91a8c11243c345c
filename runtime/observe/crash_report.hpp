#pragma once

// A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) leaves one
// readable trace on stderr before the process dies as it would have: an
// operator (or the chaos suite) sees which function crashed without a core
// file or a debugger.

namespace troupe {

/// Installs the handlers (on an alternate stack for the main thread). Call
/// once, early in main. After the trace the default action runs, so the exit
/// status and any core dump are unchanged.
void install_crash_report();

} // namespace troupe
