#include "issue/issuer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "auth/identity.h"
#include "common/crypto.h"
#include "common/oss_names.h"
#include "common/status_macros.h"
#include "issue/intent_util.h"
#include "issue/validate.h"
#include "policy/callback_param.h"
#include "policy/post_policy.h"
#include "policy/presign.h"
#include "policy/time_format.h"

namespace uploadbroker::issue {
namespace {

// Stores the intent built into `intent` (the response is already filled
// in), then reports to `done` once it is durable, or the error if building
// or storing failed.
void StoreThenAnswer(ledger::Ledger& ledger, absl::StatusOr<v1::Upload> intent,
                     std::function<void(absl::Status)> done) {
  if (!intent.ok()) {
    done(intent.status());
    return;
  }
  ledger.CreateIntent(*std::move(intent), std::move(done));
}

// A PUT has no content-length-range: the only size limit it carries is a
// signed Content-Length. So below OSS's own 5 GiB cap for one PUT the exact size is
// required, and V1, which cannot sign Content-Length, is refused.
absl::Status CheckPutSizeIsSigned(const auth::Identity& caller, bool v4, int64_t content_length) {
  if (caller.scope.max_size >= common::kMaxSingleUploadSize) return absl::OkStatus();
  if (!v4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signature_version: V1 cannot sign Content-Length, so a V1 URL cannot hold the upload to "
        "the ", caller.scope.max_size, "-byte limit of caller '", caller.name,
        "'; use V4 with content_length"));
  }
  if (content_length == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "content_length: required: caller '", caller.name, "' may upload at most ", caller.scope.max_size,
        " bytes, and a presigned PUT holds to that only by signing the exact Content-Length"));
  }
  return absl::OkStatus();
}

std::string BucketUrl(const config::Bucket& b) {
  return b.path_style ? absl::StrCat(b.scheme, "://", b.public_host, "/", b.name, "/")
                      : absl::StrCat(b.scheme, "://", b.public_host, "/");
}

}  // namespace

absl::StatusOr<absl::Duration> Issuer::Ttl(const auth::Identity& caller,
                                           int64_t ttl_seconds,
                                           const policy::Credential& cred,
                                           absl::Time now) const {
  return ClampTtl(config_, caller, ttl_seconds, cred, now);
}

void Issuer::CreatePostPolicy(
    const auth::Identity& caller, const v1::CreatePostPolicyRequest& req,
    v1::CreatePostPolicyResponse* resp, std::function<void(absl::Status)> done) {
  auto build = [&]() -> absl::StatusOr<v1::Upload> {
    PreparedIntent c;
    UB_RETURN_IF_ERROR(PrepareIntent(config_, caller, req.bucket(), req.metadata(), clock_.Now(), &c));
    if (!req.key().empty() && !req.key_prefix().empty()) {
      return absl::InvalidArgumentError("key, key_prefix: set at most one of them");
    }
    policy::PostPolicyInput in;
    in.bucket = req.bucket();
    if (!req.key_prefix().empty()) {
      UB_RETURN_IF_ERROR(common::CheckObjectKey("key_prefix", req.key_prefix()));
      in.key = req.key_prefix();
      in.key_is_prefix = true;
    } else if (!req.key().empty()) {
      UB_RETURN_IF_ERROR(common::CheckObjectKey("key", req.key()));
      in.key = req.key();
    } else {
      in.key = absl::StrCat(caller.scope.key_prefixes.empty() ? "" : caller.scope.key_prefixes[0],
                            c.intent.upload_id());
    }
    UB_RETURN_IF_ERROR(auth::CheckKey(caller, in.key, in.key_is_prefix));
    if (req.min_size() < 0) return absl::InvalidArgumentError("min_size: must not be negative");
    if (req.max_size() < 0) return absl::InvalidArgumentError("max_size: must not be negative");
    in.max_size = req.max_size() == 0
                      ? std::min(caller.scope.max_size, common::kMaxSingleUploadSize)
                      : req.max_size();
    if (in.max_size > caller.scope.max_size) {
      return absl::PermissionDeniedError(absl::StrCat(
          "max_size: ", in.max_size, " exceeds caller '", caller.name, "' limit of ", caller.scope.max_size));
    }
    if (in.max_size > common::kMaxSingleUploadSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "max_size: ", in.max_size, " is above ", common::kMaxSingleUploadSize,
          ", the most one PostObject carries; use CreateMultipartUpload"));
    }
    in.min_size = req.min_size();
    if (in.min_size > in.max_size) {
      return absl::InvalidArgumentError("min_size: larger than max_size");
    }
    std::vector<std::string> requested(req.content_types().begin(), req.content_types().end());
    UB_RETURN_IF_ERROR(ResolveContentTypes(caller, requested, &in.content_types));
    UB_ASSIGN_OR_RETURN(c.cred, creds_.Get());
    UB_ASSIGN_OR_RETURN(absl::Duration ttl, Ttl(caller, req.ttl_seconds(), c.cred, c.now));
    c.expires = c.now + ttl;
    in.now = c.now;
    in.expiration = c.expires;
    in.region = c.bucket->region;
    in.v4 = req.signature_version() != v1::SIGNATURE_VERSION_V1;
    in.callback_b64 = callback_param_.Build(c.intent.upload_id());
    in.forbid_overwrite = !req.allow_overwrite();
    in.object_acl = policy::kPrivateAcl;
    policy::SignedPostForm form = policy::SignPostPolicy(in, c.cred);

    v1::Upload& intent = c.intent;
    intent.set_key(in.key);
    intent.set_key_is_prefix(in.key_is_prefix);
    intent.set_min_size(in.min_size);
    intent.set_max_size(in.max_size);
    for (const auto& t : in.content_types) intent.add_content_types(t);
    *intent.mutable_created_at() = ToProto(c.now);
    *intent.mutable_expires_at() = ToProto(c.expires);
    intent.set_method(v1::UPLOAD_METHOD_POST);
    intent.set_signature_version(in.v4 ? v1::SIGNATURE_VERSION_V4 : v1::SIGNATURE_VERSION_V1);

    resp->set_upload_id(intent.upload_id());
    resp->set_url(BucketUrl(*c.bucket));
    for (auto& [name, value] : form.fields) {
      auto* f = resp->add_fields();
      f->set_name(std::move(name));
      f->set_value(std::move(value));
    }
    *resp->mutable_expires_at() = intent.expires_at();
    resp->set_key(in.key);
    resp->set_key_is_prefix(in.key_is_prefix);
    resp->set_policy_json(std::move(form.policy_json));
    return std::move(intent);
  };
  StoreThenAnswer(ledger_, build(), std::move(done));
}

void Issuer::CreatePresignedPut(
    const auth::Identity& caller, const v1::CreatePresignedPutRequest& req,
    v1::CreatePresignedPutResponse* resp, std::function<void(absl::Status)> done) {
  auto build = [&]() -> absl::StatusOr<v1::Upload> {
    PreparedIntent c;
    UB_RETURN_IF_ERROR(PrepareIntent(config_, caller, req.bucket(), req.metadata(), clock_.Now(), &c));
    if (req.key().empty()) return absl::InvalidArgumentError("key: required for a presigned PUT");
    UB_RETURN_IF_ERROR(common::CheckObjectKey("key", req.key()));
    UB_RETURN_IF_ERROR(auth::CheckKey(caller, req.key(), false));
    if (req.content_type().empty()) {
      return absl::InvalidArgumentError("content_type: required (it is signed and the uploader must send it)");
    }
    std::vector<std::string> types;
    UB_RETURN_IF_ERROR(ResolveContentTypes(caller, {req.content_type()}, &types));
    if (req.content_length() < 0) return absl::InvalidArgumentError("content_length: must not be negative");
    if (req.content_length() > caller.scope.max_size) {
      return absl::PermissionDeniedError(absl::StrCat(
          "content_length: ", req.content_length(), " exceeds caller '", caller.name,
          "' limit of ", caller.scope.max_size));
    }
    if (req.content_length() > common::kMaxSingleUploadSize) {
      return absl::InvalidArgumentError(absl::StrCat(
          "content_length: ", req.content_length(), " is above ", common::kMaxSingleUploadSize,
          ", the most one PutObject carries; use CreateMultipartUpload"));
    }
    bool v4 = req.signature_version() != v1::SIGNATURE_VERSION_V1;
    UB_RETURN_IF_ERROR(CheckPutSizeIsSigned(caller, v4, req.content_length()));
    UB_ASSIGN_OR_RETURN(c.cred, creds_.Get());
    UB_ASSIGN_OR_RETURN(absl::Duration ttl, Ttl(caller, req.ttl_seconds(), c.cred, c.now));
    c.expires = c.now + ttl;

    policy::PresignInput in;
    in.method = "PUT";
    in.scheme = c.bucket->scheme;
    in.host = c.bucket->public_host;
    in.path_style = c.bucket->path_style;
    in.bucket = req.bucket();
    in.key = req.key();
    in.headers.emplace_back("Content-Type", req.content_type());
    if (req.content_length() > 0) {
      in.headers.emplace_back("Content-Length", absl::StrCat(req.content_length()));
      if (v4) in.additional_headers.push_back("content-length");
    }
    in.headers.emplace_back("x-oss-callback",
                            callback_param_.Build(c.intent.upload_id()));
    // An x-oss-* header: V1 and V4 both sign it, so the uploader cannot drop it.
    if (!req.allow_overwrite()) in.headers.emplace_back(policy::kForbidOverwrite, "true");
    // Signed the same way: the object is private whatever the bucket's ACL,
    // and the uploader can neither drop nor change it.
    in.headers.emplace_back(policy::kObjectAcl, policy::kPrivateAcl);
    in.now = c.now;
    in.expires = ttl;
    in.region = c.bucket->region;
    policy::PresignedRequest signed_req = v4 ? policy::PresignV4(in, c.cred) : policy::PresignV1(in, c.cred);

    v1::Upload& intent = c.intent;
    intent.set_key(req.key());
    intent.set_min_size(req.content_length());
    intent.set_max_size(req.content_length() > 0
                            ? req.content_length()
                            : std::min(caller.scope.max_size, common::kMaxSingleUploadSize));
    intent.add_content_types(req.content_type());
    *intent.mutable_created_at() = ToProto(c.now);
    *intent.mutable_expires_at() = ToProto(c.expires);
    intent.set_method(v1::UPLOAD_METHOD_PUT);
    intent.set_signature_version(v4 ? v1::SIGNATURE_VERSION_V4 : v1::SIGNATURE_VERSION_V1);

    resp->set_upload_id(intent.upload_id());
    resp->set_url(std::move(signed_req.url));
    resp->set_method("PUT");
    for (auto& [name, value] : signed_req.headers) {
      auto* h = resp->add_headers();
      h->set_name(std::move(name));
      h->set_value(std::move(value));
    }
    *resp->mutable_expires_at() = intent.expires_at();
    return std::move(intent);
  };
  StoreThenAnswer(ledger_, build(), std::move(done));
}

}  // namespace uploadbroker::issue
