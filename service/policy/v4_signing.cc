#include "policy/v4_signing.h"

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "policy/time_format.h"

namespace uploadbroker::policy {

std::string V4SigningKey(absl::string_view secret, absl::Time date,
                         absl::string_view region) {
  // The key takes four HMACs to derive and changes only with the day, the
  // region or the secret, so each thread remembers the last one it derived
  // (a per-thread memo: no lock, nothing shared between threads).
  struct Memo {
    std::string secret, day, region, key;
  };
  thread_local Memo memo;
  std::string day = V4Date(date);
  if (!memo.key.empty() && memo.day == day && memo.region == region &&
      common::ConstantTimeEquals(memo.secret, secret)) {
    return memo.key;
  }
  std::string k_date = common::HmacSha256(absl::StrCat("aliyun_v4", secret), day);
  std::string k_region = common::HmacSha256(k_date, region);
  std::string k_service = common::HmacSha256(k_region, "oss");
  memo = Memo{std::string(secret), std::move(day), std::string(region),
              common::HmacSha256(k_service, "aliyun_v4_request")};
  return memo.key;
}

std::string V4Signature(absl::string_view secret, absl::Time date,
                        absl::string_view region,
                        absl::string_view string_to_sign) {
  return common::HexEncode(
      common::HmacSha256(V4SigningKey(secret, date, region), string_to_sign));
}

std::string V4Scope(absl::Time date, absl::string_view region) {
  return absl::StrCat(V4Date(date), "/", region, "/oss/aliyun_v4_request");
}

std::string V4Credential(absl::string_view access_key_id, absl::Time date,
                         absl::string_view region) {
  return absl::StrCat(access_key_id, "/", V4Scope(date, region));
}

}  // namespace uploadbroker::policy
