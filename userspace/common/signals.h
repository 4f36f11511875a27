// Stop signals for daemons (lanefsd, lanefs-frontend): blocked in every
// thread and taken synchronously with sigwait() by one thread.
#pragma once

#include <signal.h>

namespace lanefs {

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (call before any
// thread starts, so all threads inherit the mask), ignores SIGPIPE, and
// returns the blocked set for sigwait().
inline sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace lanefs
