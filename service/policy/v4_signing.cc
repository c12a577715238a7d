#include "policy/v4_signing.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "policy/time_format.h"

namespace uploadbroker::policy {

namespace {

// The signing key takes four HMACs to derive and changes only with the day,
// the region or the secret, so each thread remembers the last one it derived,
// prepared for signing (a per-thread memo: no lock, nothing shared).
struct SigningKeyMemo {
  std::string secret, day, region, key;
  std::unique_ptr<common::HmacSha256Key> mac;
};

const SigningKeyMemo& SigningKeyFor(absl::string_view secret, absl::Time date,
                                    absl::string_view region) {
  thread_local SigningKeyMemo memo;
  std::string day = V4Date(date);
  if (memo.mac != nullptr && memo.day == day && memo.region == region &&
      common::ConstantTimeEquals(memo.secret, secret)) {
    return memo;
  }
  std::string k_date = common::HmacSha256(absl::StrCat("aliyun_v4", secret), day);
  std::string k_region = common::HmacSha256(k_date, region);
  std::string k_service = common::HmacSha256(k_region, "oss");
  std::string key = common::HmacSha256(k_service, "aliyun_v4_request");
  auto mac = std::make_unique<common::HmacSha256Key>(key);
  memo = SigningKeyMemo{std::string(secret), std::move(day), std::string(region),
                        std::move(key), std::move(mac)};
  return memo;
}

}  // namespace

std::string V4SigningKey(absl::string_view secret, absl::Time date,
                         absl::string_view region) {
  return SigningKeyFor(secret, date, region).key;
}

std::string V4Signature(absl::string_view secret, absl::Time date,
                        absl::string_view region,
                        absl::string_view string_to_sign) {
  return common::HexEncode(SigningKeyFor(secret, date, region).mac->Sign(string_to_sign));
}

std::string V4Scope(absl::Time date, absl::string_view region) {
  return absl::StrCat(V4Date(date), "/", region, "/oss/aliyun_v4_request");
}

std::string V4Credential(absl::string_view access_key_id, absl::Time date,
                         absl::string_view region) {
  return absl::StrCat(access_key_id, "/", V4Scope(date, region));
}

}  // namespace uploadbroker::policy
