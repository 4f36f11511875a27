// Command-line parsing for every lanefs program (CLI11): argument errors
// exit with 2, the documented code, with one line naming what was wrong;
// an unknown command word is named and the nearest command suggested.
// Header-only (CLI11 is); include it only from a main().
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace lanefs {

namespace cli_args_detail {

inline size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

inline CLI::Option* find_option(CLI::App* app, const std::string& name) {
  for (CLI::App* a = app; a; a = a->get_parent())
    if (CLI::Option* o = a->get_option_no_throw(name)) return o;
  return nullptr;
}

// Walks argv along the subcommands it names. Returns the first word that
// stands where a subcommand must be and is none (empty if there is none);
// *at is the (sub)command it was given to.
inline std::string unknown_command(CLI::App& app, int argc, char** argv, CLI::App** at) {
  CLI::App* cur = &app;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w == "--") break;
    if (w.size() > 1 && w[0] == '-') {
      if (w.find('=') != std::string::npos) continue;
      CLI::Option* o = find_option(cur, w);
      if (o && o->get_items_expected_max() > 0) ++i;  // its value
      continue;
    }
    auto subs = cur->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) break;  // a positional argument
    auto it = std::find_if(subs.begin(), subs.end(), [&](CLI::App* s) { return s->check_name(w); });
    if (it == subs.end()) {
      *at = cur;
      return w;
    }
    cur = *it;
  }
  return {};
}

}  // namespace cli_args_detail

// Parses argv into `app` (`prog` names the program in messages). Returns -1 to go on, else the exit code main()
// returns: 0 after --help/--version, 2 after an argument error.
inline int parse_args(CLI::App& app, int argc, char** argv, const std::string& prog) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    CLI::App* at = &app;
    std::string bad = cli_args_detail::unknown_command(app, argc, argv, &at);
    if (!bad.empty()) {
      std::string best;
      size_t best_d = 3;  // suggest only what is close
      for (CLI::App* s : at->get_subcommands([](CLI::App*) { return true; })) {
        size_t d = cli_args_detail::edit_distance(bad, s->get_name());
        if (d < best_d || (s->get_name().rfind(bad, 0) == 0 && best.empty())) best_d = d, best = s->get_name();
      }
      std::string where = at == &app ? prog : prog + " " + at->get_name();
      std::fprintf(stderr, "%s: unknown command '%s'%s; see %s --help\n", prog.c_str(), bad.c_str(),
                   best.empty() ? "" : (" (did you mean '" + best + "'?)").c_str(), where.c_str());
      return 2;
    }
    std::fprintf(stderr, "%s: %s; see %s --help\n", prog.c_str(), e.what(), prog.c_str());
    return 2;
  }
}

}  // namespace lanefs
