// lanefs user add|list|delete|login, and where `cluster create` leaves the
// admin token (docs/security.md).
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "cli/format.h"

namespace lanefs::cli {

using nlohmann::json;

namespace {

std::string created_string(int64_t s) {
  if (s == 0) return "-";
  char buf[32];
  time_t t = static_cast<time_t>(s);
  struct tm tm {};
  gmtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string fs_string(const proto::UserRecord& u) {
  if (proto::role_is_admin(u.role) || u.filesystems.empty()) return "all";
  return join(u.filesystems, ",");
}

}  // namespace

int cmd_user_add(const Globals& g, const std::string& name, const std::string& role, const std::string& fs_list,
                 bool root_squash) {
  auto r = proto::parse_user_role(role);
  if (!r) return fail(make_error(Errc::kInvalid, "role '" + role + "': one of readonly, client, admin, clusteradmin"));
  proto::UserRecord u;
  u.name = name;
  u.role = *r;
  u.root_squash = root_squash;
  for (size_t p = 0; p < fs_list.size();) {
    size_t c = fs_list.find(',', p);
    if (c == std::string::npos) c = fs_list.size();
    if (c > p) u.filesystems.push_back(fs_list.substr(p, c - p));
    p = c + 1;
  }
  if (!u.filesystems.empty() && proto::role_is_admin(u.role))
    return fail(make_error(Errc::kInvalid, "--fs limits client and readonly users; an " + role + " may use every filesystem"));
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto t = (*c)->user_add(u);
  if (!t.ok()) return fail(t.error());
  if (g.json) {
    std::cout << json{{"name", u.name}, {"role", role}, {"filesystems", u.filesystems}, {"generation", t->generation}}.dump(2)
              << "\n";
  } else {
    std::printf("user '%s' added (role %s, filesystems: %s); write its token with: lanefs user login %s --token-file FILE\n",
                u.name.c_str(), role.c_str(), fs_string(u).c_str(), u.name.c_str());
  }
  return 0;
}

int cmd_user_list(const Globals& g) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto l = (*c)->user_list();
  if (!l.ok()) return fail(l.error());
  if (g.json) {
    json j = json::array();
    for (const auto& u : *l)
      j.push_back({{"name", u.name}, {"role", proto::role_name(u.role)}, {"filesystems", u.filesystems},
                   {"root_squash", u.root_squash}, {"generation", u.generation}, {"created_s", u.created_s},
                   {"builtin", u.name == proto::kAdminUser}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : *l)
    rows.push_back({u.name, proto::role_name(u.role), fs_string(u), u.root_squash ? "yes" : "no",
                    u.name == proto::kAdminUser ? "built-in" : created_string(u.created_s)});
  std::fputs(render_table({"NAME", "ROLE", "FILESYSTEMS", "ROOT SQUASH", "CREATED"}, rows).c_str(), stdout);
  return 0;
}

int cmd_user_delete(const Globals& g, const std::string& name) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  if (auto st = (*c)->user_delete(name); !st.ok()) return fail(st.error());
  std::printf("user '%s' deleted; its tokens no longer work\n", name.c_str());
  return 0;
}

int cmd_user_login(const Globals& g, const std::string& name) {
  // Written to --token-file, $LANEFS_TOKEN_FILE or ~/.config/lanefs/token.
  // Presented: that file when it is NAME's own token (a refresh), else the
  // first token found on the usual path besides it (an admin's).
  const std::string dest = proto::token_search_path(g.token_file).front();
  Globals g2 = g;
  g2.token_file.clear();
  if (auto own = proto::load_token_file(dest); own.ok() && own->user == name) g2.token_file = dest;
  const char* env = std::getenv("LANEFS_TOKEN_FILE");
  for (const auto& p : {std::string(env ? env : ""), proto::default_user_token_path(),
                        std::string("/etc/lanefs/admin.token")}) {
    if (!g2.token_file.empty()) break;
    if (!p.empty() && p != dest && access(p.c_str(), F_OK) == 0) g2.token_file = p;
  }
  if (g2.token_file.empty())
    return fail(make_error(Errc::kPermission, "permission denied: no token to present besides " + dest +
                                                  " (an admin's: --token-file is where NAME's goes; set "
                                                  "LANEFS_TOKEN_FILE to the admin's token)"));
  auto c = connect(g2);
  if (!c.ok()) return fail(c.error());
  auto t = (*c)->user_token(name);
  if (!t.ok()) return fail(t.error());
  if (auto st = proto::save_token_file(dest, *t); !st.ok()) return fail(st.error());
  std::printf("token of user '%s' written to %s (mode 0600)\n", name.c_str(), dest.c_str());
  return 0;
}

Result<std::string> save_admin_token(const Globals& g, client::ClusterClient& c) {
  LANEFS_ASSIGN_OR_RETURN(auto t, c.user_token(std::string(proto::kAdminUser)));
  std::string dest = !g.token_file.empty() ? g.token_file
                     : geteuid() == 0      ? std::string("/etc/lanefs/admin.token")
                                           : proto::default_user_token_path();
  LANEFS_TRY(proto::save_token_file(dest, t));
  return dest;
}

}  // namespace lanefs::cli
