// The host's network resources file (`lanefs local resources net`): load,
// save, label lookup, error reports and where the file lives.
#include "client/local_resources.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace lanefs::client {
namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::vector<std::pair<std::string, std::string>> pairs(const std::vector<NetResource>& v) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& n : v) out.emplace_back(n.dev, n.label);
  return out;
}

TEST(LocalResources, MissingFileIsEmpty) {
  test::TempDir dir;
  auto r = load_net_resources(dir.path() + "/no-such.json");
  ASSERT_OK(r);
  EXPECT_TRUE(r->empty());
  // An object without "net" is an empty list too.
  write_file(dir.path() + "/empty.json", "{}");
  auto e = load_net_resources(dir.path() + "/empty.json");
  ASSERT_OK(e);
  EXPECT_TRUE(e->empty());
}

TEST(LocalResources, SaveThenLoadRoundTrips) {
  test::TempDir dir;
  const std::string path = dir.path() + "/etc/lanefs/resources.json";  // directories created
  const std::vector<NetResource> nics = {{"ca", "A"}, {"cb", "B"}, {"eth2", ""}};
  ASSERT_OK(save_net_resources(path, nics));
  auto back = load_net_resources(path);
  ASSERT_OK(back);
  using P = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(pairs(*back), (P{{"ca", "A"}, {"cb", "B"}, {"eth2", ""}}));
  // The file is the documented JSON shape, and no temporary file is left.
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j, nlohmann::json::parse(R"({"net": [{"dev": "ca", "label": "A"}, {"dev": "cb", "label": "B"},
                                               {"dev": "eth2", "label": ""}]})"));
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() + "/etc/lanefs")) {
    ++files;
    EXPECT_EQ(e.path().filename(), "resources.json");
  }
  EXPECT_EQ(files, 1u);
  // Saving again replaces the list.
  ASSERT_OK(save_net_resources(path, {{"cb", "C"}}));
  auto again = load_net_resources(path);
  ASSERT_OK(again);
  EXPECT_EQ(pairs(*again), (P{{"cb", "C"}}));
  ASSERT_OK(save_net_resources(path, {}));
  auto none = load_net_resources(path);
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
}

TEST(LocalResources, LabelOf) {
  const std::vector<NetResource> nics = {{"ca", "A"}, {"cb", ""}, {"cc", "C"}};
  EXPECT_EQ(label_of(nics, "ca"), "A");
  EXPECT_EQ(label_of(nics, "cc"), "C");
  EXPECT_EQ(label_of(nics, "cb"), "");
  EXPECT_EQ(label_of(nics, "eth0"), "");
  EXPECT_EQ(label_of({}, "ca"), "");
}

TEST(LocalResources, EntryWithoutLabelIsUnlabeled) {
  test::TempDir dir;
  const std::string path = dir.path() + "/r.json";
  write_file(path, R"({"net": [{"dev": "ca"}, {"dev": "cb", "label": "B"}]})");
  auto r = load_net_resources(path);
  ASSERT_OK(r);
  using P = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(pairs(*r), (P{{"ca", ""}, {"cb", "B"}}));
}

TEST(LocalResources, MalformedFileIsInvalidAndNamed) {
  test::TempDir dir;
  const std::string path = dir.path() + "/bad.json";
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : {Case{"{not json", "not a lanefs resources file"},
                        Case{"[]", "not a lanefs resources file"},
                        Case{R"({"net": 5})", "not a lanefs resources file"},
                        Case{R"({"net": [{"label": "A"}]})", "without \"dev\""},
                        Case{R"({"net": [{"dev": 7}]})", "without \"dev\""},
                        Case{R"({"net": ["ca"]})", "without \"dev\""},
                        Case{R"({"net": [{"dev": "ca", "label": 5}]})", "the label of ca is not a string"},
                        Case{R"({"net": [{"dev": "ca", "label": null}]})", "the label of ca is not a string"}}) {
    write_file(path, c.text);
    auto r = load_net_resources(path);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.code(), Errc::kInvalid) << c.text;
    EXPECT_EQ(r.error().message.rfind(path + ": ", 0), 0u) << c.text << " -> " << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << c.text << " -> " << r.error().message;
  }
}

// Sets (or unsets) LANEFS_RESOURCES for one scope and restores it after.
class ResourcesEnv {
 public:
  explicit ResourcesEnv(const char* value) {
    if (const char* old = std::getenv("LANEFS_RESOURCES")) old_ = old;
    if (value) setenv("LANEFS_RESOURCES", value, 1);
    else unsetenv("LANEFS_RESOURCES");
  }
  ~ResourcesEnv() {
    if (old_) setenv("LANEFS_RESOURCES", old_->c_str(), 1);
    else unsetenv("LANEFS_RESOURCES");
  }

 private:
  std::optional<std::string> old_;
};

TEST(LocalResources, PathHonoursEnvironment) {
  {
    ResourcesEnv env(nullptr);
    EXPECT_EQ(resources_path(), "/etc/lanefs/resources.json");
  }
  {
    ResourcesEnv env("/tmp/lanefs-x/res.json");
    EXPECT_EQ(resources_path(), "/tmp/lanefs-x/res.json");
  }
  {
    ResourcesEnv env("");  // empty: the default
    EXPECT_EQ(resources_path(), "/etc/lanefs/resources.json");
  }
}

}  // namespace
}  // namespace lanefs::client
