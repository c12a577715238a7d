// PostObject (HTML form upload) policies and their signatures; see
// oss-protocol.md §1-2 and §7.
//
// Pure functions, thread-safe. SignPostPolicy does not validate untrusted
// input: the caller (the RPC layer) has already checked the key, sizes and
// content types, and passes UTF-8 strings (proto3 `string` fields are).
// Violated preconditions are programming errors and abort via UB_CHECK.
#ifndef UPLOADBROKER_POLICY_POST_POLICY_H_
#define UPLOADBROKER_POLICY_POST_POLICY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "policy/credential.h"

namespace uploadbroker::policy {

// V1: base64(HMAC-SHA1(secret, policy_b64)), the `Signature` field.
std::string PostSignatureV1(absl::string_view secret,
                            absl::string_view policy_b64);

// V4: lowercase hex(HMAC-SHA256(V4SigningKey(secret, date, region),
// policy_b64)), the `x-oss-signature` field.
std::string PostSignatureV4(absl::string_view secret, absl::Time date,
                            absl::string_view region,
                            absl::string_view policy_b64);

struct PostPolicyInput {
  std::string bucket;  // Required.
  // The exact key, or with key_is_prefix a prefix the uploader's key must
  // start with.
  std::string key;
  bool key_is_prefix = false;
  // ["content-length-range", min, max]; requires 0 <= min_size <= max_size.
  int64_t min_size = 0;
  int64_t max_size = 0;
  // Empty: unconstrained. One: ["eq","$Content-Type",t] and a "Content-Type"
  // form field. Several: ["in","$content-type",[...]] and no form field.
  std::vector<std::string> content_types;
  // Non-empty: pinned as {"callback": b64} and returned as a "callback" field.
  std::string callback_b64;
  // Non-empty: pinned with "eq" and returned as a field.
  std::string success_action_status = "200";
  // True: pinned as {"x-oss-forbid-overwrite":"true"} and returned as that
  // field, so the upload cannot replace an existing object.
  bool forbid_overwrite = false;
  // Non-empty: pinned as {"x-oss-object-acl": acl} and returned as that
  // field, so the uploader cannot choose the object's ACL.
  std::string object_acl;
  absl::Time now;         // Signing time (x-oss-date for V4).
  absl::Time expiration;  // Policy "expiration"; must be after `now`.
  std::string region;     // Standard form, e.g. cn-hangzhou; used by V4.
  bool v4 = true;
};

struct SignedPostForm {
  // The exact JSON text that was base64-encoded into the "policy" field.
  std::string policy_json;
  // Form fields in the order they must be sent. The uploader appends "file"
  // last; for a prefix policy it replaces the "key" value (the prefix) with
  // the full key.
  std::vector<std::pair<std::string, std::string>> fields;
};

// Builds the policy JSON (members "expiration", "conditions"; compact, like
// JavaScript's JSON.stringify) and signs it with `cred`. Conditions, in order:
//   {"bucket":b}; V4: {"x-oss-signature-version"}, {"x-oss-credential"},
//   {"x-oss-date"}; ["content-length-range",min,max]; the key condition;
//   ["eq","$success_action_status",s]; the content-type condition;
//   {"x-oss-security-token":t} (STS); {"callback":b64};
//   {"x-oss-forbid-overwrite":"true"}; {"x-oss-object-acl":acl}.
// Fields, in order: key, policy, then V1 OSSAccessKeyId, Signature or V4
// x-oss-signature-version, x-oss-credential, x-oss-date, x-oss-signature;
// then x-oss-security-token (STS), success_action_status, Content-Type (one
// type), callback, x-oss-forbid-overwrite, x-oss-object-acl.
SignedPostForm SignPostPolicy(const PostPolicyInput& in,
                              const Credential& cred);

}  // namespace uploadbroker::policy

#endif  // UPLOADBROKER_POLICY_POST_POLICY_H_
