#include "http/message.h"

#include <unistd.h>

#include "absl/strings/match.h"

namespace uploadbroker::http {

std::string Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

FileBody::~FileBody() {
  if (fd >= 0) ::close(fd);
}

}  // namespace uploadbroker::http
