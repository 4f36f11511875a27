#include <arpa/inet.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "support/test_support.h"

namespace lanefs::test {
namespace {
pid_t spawn(const std::vector<std::string>& argv, int out_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    if (out_fd >= 0) {
      dup2(out_fd, 1);
      dup2(out_fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}
}  // namespace

Child::Child(std::vector<std::string> argv, const std::string& log_file) {
  int fd = -1;
  if (!log_file.empty()) fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_ = spawn(argv, fd);
  if (fd >= 0) close(fd);
}

Child::~Child() { kill_hard(); }
Child::Child(Child&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    kill_hard();
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

void Child::kill_hard() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

int Child::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int st;
  return waitpid(pid_, &st, WNOHANG) == 0;
}

int run_command(const std::vector<std::string>& argv, std::string* out) {
  char tmpl[] = "/tmp/lanefs-cmd-XXXXXX";
  int fd = mkstemp(tmpl);
  pid_t pid = spawn(argv, fd);
  int st = 0;
  waitpid(pid, &st, 0);
  if (out) {
    out->clear();
    lseek(fd, 0, SEEK_SET);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out->append(buf, n);
  }
  close(fd);
  unlink(tmpl);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

uint16_t free_udp_port() {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

std::string enter_netns_with_nft(const std::string& table) {
  if (geteuid() != 0) return "needs root (network namespace, nftables)";
  if (unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + strerror(errno);
  if (run_command({"ip", "link", "set", "lo", "up"}) != 0) return "ip link set lo up failed";
  if (run_command({"nft", "add", "table", "inet", table}) != 0) return "nft is not usable (package nftables)";
  if (run_command({"nft", "add", "chain", "inet", table, "out", "{ type filter hook output priority 0; }"}) != 0)
    return "nft: cannot add an output chain";
  return "";
}

}  // namespace lanefs::test
