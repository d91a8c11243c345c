#include "runtime/observe/crash_report.hpp"

#include <csignal>
#include <cstdint>
#include <cstring>
#include <execinfo.h>
#include <unistd.h>

namespace troupe {

namespace {

constexpr int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void write_text(const char* s) {
  // Only async-signal-safe calls from here on: write(2), no stdio.
  auto n = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)n;
}

void write_number(long v) {
  char buf[24];
  int i = sizeof buf - 1;
  buf[i] = '\0';
  bool neg = v < 0;
  unsigned long u =
      neg ? 0UL - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && i > 1);
  if (neg)
    buf[--i] = '-';
  write_text(buf + i);
}

void write_hex(std::uintptr_t v) {
  char buf[2 + 2 * sizeof v + 1];
  buf[0] = '0';
  buf[1] = 'x';
  for (std::size_t i = 0; i < 2 * sizeof v; ++i)
    buf[2 + i] = "0123456789abcdef"[(v >> (4 * (2 * sizeof v - 1 - i))) & 0xf];
  buf[sizeof buf - 1] = '\0';
  write_text(buf);
}

void on_fatal_signal(int sig, siginfo_t* info, void*) {
  write_text("\ntroupe: fatal signal ");
  write_number(sig);
  write_text(" (");
  write_text(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
  write_text(") in pid ");
  write_number(static_cast<long>(::getpid()));
  write_text(", thread ");
  write_number(static_cast<long>(::gettid()));
  if (info && info->si_code <= 0) {
    // Sent by kill(2) or tgkill(2), not raised by a fault.
    write_text(", sent by pid ");
    write_number(static_cast<long>(info->si_pid));
  } else if (sig == SIGSEGV || sig == SIGBUS) {
    write_text(", address ");
    write_hex(reinterpret_cast<std::uintptr_t>(info ? info->si_addr : nullptr));
  }
  write_text("; backtrace (addr2line -e troupe -f -C <offset>):\n");
  void* frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  // Die of the same signal: exit status, core dump and systemd's view stay
  // what they would have been without this handler.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

} // namespace

void install_crash_report() {
  // The alternate stack serves the main thread only (a stack overflow on
  // another thread faults again in the handler and dies without a trace,
  // exactly as it would have without it).
  // backtrace() loads libgcc on its first call, which allocates: do it now,
  // not inside the handler.
  void* warm[1];
  ::backtrace(warm, 1);
  static char alt_stack[64 * 1024];
  stack_t ss{};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof alt_stack;
  ::sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : fatal_signals)
    ::sigaction(sig, &sa, nullptr);
}

} // namespace troupe
