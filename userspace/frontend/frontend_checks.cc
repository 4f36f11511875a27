// Frontend: checks at mount time (frontend.h) — a dead lanefs mount left at
// the target by a killed frontend (taken over or detached), and how the
// options asked for differ from those of a mount already there.
#include <limits.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "frontend/frontend.h"

namespace lanefs::frontend {

namespace {
// /proc/self/mountinfo escapes blanks, tabs, newlines and backslashes in
// octal (\040); undoes it.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(uint8_t(s[i + 1]))) {
      out += char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

Result<Frontend::DeadMount> Frontend::dead_mount(const std::string& target) {
  DeadMount d;
  d.path = target;
  if (d.path.empty() || d.path[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == nullptr) return sys_error("getcwd", errno);
    d.path = std::string(cwd) + "/" + target;
  }
  while (d.path.size() > 1 && d.path.back() == '/') d.path.pop_back();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPEROPTIONS
    std::istringstream f(line);
    std::string id, parent, dev, root, point, opts;
    f >> id >> parent >> dev >> root >> point >> opts;
    if (unescape_mountinfo(point) != d.path) continue;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream t(line.substr(dash + 3));
    std::string source;
    t >> d.fstype >> source;  // the last mount at that point wins (it is the one on top)
    d.source = unescape_mountinfo(source);
    d.read_only = opts == "ro" || opts.rfind("ro,", 0) == 0;
  }
  if (d.fstype.empty())
    return make_error(Errc::kSystem, "mount point " + target + ": transport endpoint is not connected");
  if (d.fstype != "fuse.lanefs" && d.fstype != "lanefs")
    return make_error(Errc::kBusy, "a dead FUSE mount (" + d.fstype + ") is attached at " + target + "; run umount " +
                                       target);
  return d;
}

bool Frontend::attachable(const DeadMount& d, const std::string& source, const client::MountOptions& o,
                          std::string* why) {
  if (d.fstype != "lanefs") *why = "it is a FUSE mount (FUSE connections cannot be taken over)";
  else if (o.client == client::ClientKind::kFuse) *why = "client=fuse asks for a FUSE mount";
  else if (d.source != source) *why = "it was mounted from " + d.source;
  else if (d.read_only != o.read_only) *why = std::string("it was mounted ") + (d.read_only ? "ro" : "rw");
  else return true;
  return false;
}

Status Frontend::detach_dead_mount(const DeadMount& d) {
  if (umount2(d.path.c_str(), MNT_DETACH) != 0)
    return make_error(Errc::kBusy, "a dead lanefs mount is still attached at " + d.path + " (umount: " +
                                       std::strerror(errno) + "); run umount " + d.path);
  LOG_WARN("detached a dead lanefs mount at {} (its frontend had died)", d.path);
  return ok_status();
}

// "ro (mounted: rw), forcedirect (mounted: writecache)": where the options
// asked for differ from those of the mount there.
std::string options_differ(const client::MountOptions& had, const client::MountOptions& want) {
  auto split = [](const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string t; std::getline(in, t, ',');) v.push_back(t);
    return v;
  };
  auto group = [](const std::string& t) -> std::string {  // what one option sets
    if (t == "writecache" || t == "readcache" || t == "forcedirect") return "cache";
    if (t == "ro" || t == "rw") return "rw";
    return t.substr(0, t.find('='));
  };
  const auto old_opts = split(had.to_string()), new_opts = split(want.to_string());
  auto has = [](const std::vector<std::string>& v, const std::string& t) {
    return std::find(v.begin(), v.end(), t) != v.end();
  };
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  for (const auto& t : new_opts) {
    if (has(old_opts, t)) continue;
    std::string instead;
    for (const auto& u : old_opts)
      if (group(u) == group(t)) instead += (instead.empty() ? "" : " ") + u;
    add(t + " (mounted: " + (instead.empty() ? "not set" : instead) + ")");
  }
  for (const auto& u : old_opts) {
    bool named = false;
    for (const auto& t : new_opts) named = named || group(t) == group(u);
    if (!named) add("no " + u + " (mounted: " + u + ")");
  }
  return out.empty() ? "options differ" : out;
}

}  // namespace lanefs::frontend
