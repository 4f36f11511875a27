// The FUSE channel a test run mounts with (issue 14): ctest registers every
// FUSE test twice, with LANEFS_TEST_FUSE_CHANNEL=classic and =uring. The
// fixture adds fuse_channel= to each mount (unless the test names one),
// turns the kernel's fuse.enable_uring on for uring runs (restoring it at
// exit), and before each unmount checks the frontend's per-channel request
// counters: a run that silently fell back to the other channel fails.
// LANEFS_TEST_FUSE_CHANNEL=kernel runs the same tests on the kernel client
// (lanefs.ko, issue 15: client=kernel on every mount; tests/kmod runs them
// in a qemu guest with the module loaded).
#pragma once

#include <string>

#include "common/result.h"

namespace lanefs::test {

// "classic", "uring", "kernel", or "" (the test runs with the default, auto).
const std::string& test_fuse_channel();
// `opts` with the run's fuse_channel= (kernel: client=) added.
std::string with_test_channel(const std::string& opts);
// Turns fuse.enable_uring on for a uring run (once per process).
Status prepare_test_channel();
// The requests of mount `dir` (served by the frontend of `run_dir`) came
// on the run's channel; "" when they did, else what went wrong.
std::string check_test_channel(const std::string& run_dir, const std::string& dir);

}  // namespace lanefs::test
