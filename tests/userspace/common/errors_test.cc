// Error codes: text and names for every code, the errno mapping, and
// validation of raw wire status values.
#include "common/errors.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"

namespace lanefs {
namespace {

std::vector<Errc> all_codes() {
  return {
#define LANEFS_T_CODE(name, value, text) Errc::name,
      LANEFS_ERRC_LIST(LANEFS_T_CODE)
#undef LANEFS_T_CODE
  };
}

TEST(Errors, ValuesAreDenseFromZero) {
  const auto codes = all_codes();
  for (size_t i = 0; i < codes.size(); ++i) EXPECT_EQ(static_cast<int32_t>(codes[i]), int32_t(i));
}

TEST(Errors, EveryCodeHasDistinctTextAndName) {
  std::set<std::string> texts, names;
  for (Errc c : all_codes()) {
    const auto text = errc_text(c);
    const auto name = errc_name(c);
    EXPECT_FALSE(text.empty()) << int(c);
    EXPECT_NE(text, "unknown error") << int(c);
    EXPECT_FALSE(name.empty()) << int(c);
    EXPECT_NE(name, "Unknown") << int(c);
    EXPECT_NE(name[0], 'k') << name;  // the k prefix is stripped
    EXPECT_TRUE(texts.insert(std::string(text)).second) << "duplicate text " << text;
    EXPECT_TRUE(names.insert(std::string(name)).second) << "duplicate name " << name;
  }
  EXPECT_EQ(errc_name(Errc::kNotFound), "NotFound");
  EXPECT_EQ(errc_text(Errc::kNotFound), "not found");
  EXPECT_EQ(errc_text(static_cast<Errc>(9999)), "unknown error");
  EXPECT_EQ(errc_name(static_cast<Errc>(-1)), "Unknown");
}

TEST(Errors, EveryErrorMapsToNonzeroErrno) {
  EXPECT_EQ(to_errno(Errc::kOk), 0);
  for (Errc c : all_codes()) {
    if (c == Errc::kOk) continue;
    EXPECT_GT(to_errno(c), 0) << errc_name(c);
  }
  EXPECT_EQ(to_errno(static_cast<Errc>(9999)), EIO);
}

TEST(Errors, SpecificErrnoValues) {
  EXPECT_EQ(to_errno(Errc::kNotFound), ENOENT);
  EXPECT_EQ(to_errno(Errc::kExists), EEXIST);
  EXPECT_EQ(to_errno(Errc::kNotEmpty), ENOTEMPTY);
  EXPECT_EQ(to_errno(Errc::kNameTooLong), ENAMETOOLONG);
  EXPECT_EQ(to_errno(Errc::kNoAttr), ENODATA);
  EXPECT_EQ(to_errno(Errc::kCorrupt), EIO);
  EXPECT_EQ(to_errno(Errc::kProtocol), EIO);
}

// Every code with its own errno (all but the EIO family) survives
// errno -> Errc -> errno, so sys_error() keeps the meaning of a syscall error.
TEST(Errors, FromErrnoInvertsToErrnoForPosixLikeCodes) {
  int checked = 0;
  for (Errc c : all_codes()) {
    const int e = to_errno(c);
    if (e == EIO) continue;
    EXPECT_EQ(from_errno(e), c) << errc_name(c) << " via errno " << e;
    ++checked;
  }
  EXPECT_GE(checked, 20);
  EXPECT_EQ(from_errno(EIO), Errc::kSystem);
  EXPECT_EQ(from_errno(EAGAIN), Errc::kBusy);
  EXPECT_EQ(from_errno(ECONNREFUSED), Errc::kUnreachable);
  EXPECT_EQ(from_errno(123456), Errc::kSystem);
}

TEST(Errors, ErrcValid) {
  for (Errc c : all_codes()) EXPECT_TRUE(errc_valid(static_cast<int32_t>(c))) << errc_name(c);
  const auto n = static_cast<int32_t>(all_codes().size());
  EXPECT_FALSE(errc_valid(n));
  EXPECT_FALSE(errc_valid(-1));
  EXPECT_FALSE(errc_valid(1000));
  EXPECT_FALSE(errc_valid(INT32_MIN));
  EXPECT_FALSE(errc_valid(INT32_MAX));
}

TEST(Errors, SysErrorUsesErrnoMapping) {
  Error e = sys_error("open /x", ENOENT);
  EXPECT_EQ(e.code, Errc::kNotFound);
  EXPECT_NE(e.to_string().find("open /x"), std::string::npos);
  EXPECT_EQ(make_error(Errc::kBusy).to_string(), "busy");
}

}  // namespace
}  // namespace lanefs
