#include "common/result.h"

#include <cstring>

namespace lanefs {

std::string Error::to_string() const {
  if (message.empty()) return std::string(errc_text(code));
  return message;
}

Error sys_error(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  Errc code = from_errno(err);
  return Error{code, std::move(msg)};
}

}  // namespace lanefs
