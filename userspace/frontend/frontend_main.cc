// lanefs-frontend: the client container (see frontend.h). Normally started
// by mount.lanefs with --daemon; it exits after the last unmount.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "common/cli_args.h"
#include "common/log.h"
#include "common/signals.h"
#include "lanefs/config.h"
#include "frontend/frontend.h"


int main(int argc, char** argv) {
  CLI::App app{"lanefs-frontend: lanefs client container"};
  std::string run_dir = "/run/lanefs", log_file = "/var/log/lanefs/frontend.log", log_level = "info";
  bool daemon = false;
  double idle_exit_s = 60;
  app.add_option("--run-dir", run_dir, "control socket and pid file directory")->capture_default_str();
  app.add_option("--log-file", log_file, "log file")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_flag("--daemon", daemon, "detach from the terminal");
  app.add_option("--idle-exit", idle_exit_s, "exit after this many seconds without any mount")->capture_default_str();
  app.set_version_flag("--version", LANEFS_VERSION);
  if (int rc = lanefs::parse_args(app, argc, argv, "lanefs-frontend"); rc >= 0) return rc;

  // Before the fork, so a bad level or log file is reported to the caller.
  if (auto st = lanefs::init_logging("lanefs-frontend", log_file, log_level, true); !st.ok()) {
    std::fprintf(stderr, "lanefs-frontend: %s\n", st.error().message.c_str());
    return 2;
  }
  if (daemon) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("lanefs-frontend: fork");
      return 1;
    }
    if (pid > 0) return 0;
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    // stderr goes to the log file so libraries' own messages (DPDK) are kept.
    int logfd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    dup2(logfd >= 0 ? logfd : devnull, 2);
    if (devnull > 2) close(devnull);
    if (logfd > 2) close(logfd);
  }

  sigset_t set = lanefs::block_stop_signals();

  lanefs::frontend::FrontendOptions o;
  o.run_dir = run_dir;
  o.idle_exit_ns = static_cast<uint64_t>(idle_exit_s * 1e9);
  auto* fe = new lanefs::frontend::Frontend(o);
  if (auto st = fe->start(); !st.ok()) {
    LOG_ERROR("{}", st.error().to_string());
    std::fprintf(stderr, "lanefs-frontend: %s\n", st.error().to_string().c_str());
    return 1;
  }
  std::thread([fe, set] {
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO("signal {}: unmounting and leaving", sig);
    fe->request_stop();
  }).detach();
  int rc = fe->run();
  spdlog::default_logger()->flush();
  // Mount threads still blocked in the kernel (busy lazy unmounts) must not
  // hold the process: exit without unwinding them.
  _exit(rc);
}
