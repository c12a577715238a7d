// libFuzzer target for the config parser (build with -DUB_FUZZ=ON, clang):
// any text is YAML the broker may be handed. ParseConfig must answer with a
// config or an InvalidArgument naming the file, never crash, hang or throw;
// an accepted config must hold the rules the broker relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "common/oss_names.h"
#include "config/config.h"

namespace {

void Require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<uploadbroker::config::Config> cfg =
      uploadbroker::config::ParseConfig(text, "fuzz.yaml");
  if (!cfg.ok()) {
    Require(cfg.status().code() == absl::StatusCode::kInvalidArgument);
    Require(absl::StartsWith(cfg.status().message(), "fuzz.yaml: "));
    return 0;
  }
  Require(!cfg->buckets.empty());
  for (const auto& bucket : cfg->buckets) {
    Require(uploadbroker::common::IsValidBucketName(bucket.name));
    Require(cfg->development || bucket.scheme == "https");
  }
  for (const auto& caller : cfg->callers) {
    Require(caller.max_size > 0 && caller.max_size <= uploadbroker::common::kMaxObjectSize);
    for (const auto& prefix : caller.key_prefixes) {
      Require(!prefix.empty() && prefix.back() == '/');
    }
    for (const auto& bucket : caller.buckets) Require(cfg->FindBucket(bucket) != nullptr);
  }
  return 0;
}
