#include "issue/multipart_issuer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "auth/identity.h"
#include "common/oss_names.h"
#include "common/request_limits.h"
#include "common/status_macros.h"
#include "issue/intent_util.h"
#include "issue/validate.h"
#include "policy/presign.h"

namespace uploadbroker::issue {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

void AddHeaders(const std::vector<std::pair<std::string, std::string>>& headers,
                google::protobuf::RepeatedPtrField<v1::HttpHeader>* out) {
  for (const auto& [name, value] : headers) {
    v1::HttpHeader* h = out->Add();
    h->set_name(name);
    h->set_value(value);
  }
}

absl::Status NotFound(const std::string& upload_id) {
  return absl::NotFoundError(absl::StrCat("upload_id: no upload '", upload_id, "'"));
}

// The configured bucket of `intent`; FailedPrecondition if it is gone.
absl::StatusOr<const config::Bucket*> IntentBucket(const config::Config& config,
                                                   const v1::Upload& intent) {
  const config::Bucket* bucket = config.FindBucket(intent.bucket());
  if (bucket == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("bucket: '", intent.bucket(), "' is no longer configured on this broker"));
  }
  return bucket;
}

// What every presigned request for `intent`'s object shares.
policy::PresignInput PresignFor(const char* method, const config::Bucket& bucket,
                                const v1::Upload& intent, absl::Time now, absl::Duration ttl) {
  policy::PresignInput in;
  in.method = method;
  in.scheme = bucket.scheme;
  in.host = bucket.public_host;
  in.path_style = bucket.path_style;
  in.bucket = intent.bucket();
  in.key = intent.key();
  in.now = now;
  in.expires = ttl;
  in.region = bucket.region;
  return in;
}

}  // namespace

absl::StatusOr<v1::MultipartPlan> PlanParts(int64_t total_size, int64_t part_size) {
  if (total_size <= 0) return absl::InvalidArgumentError("total_size: required, in bytes");
  if (part_size < 0) return absl::InvalidArgumentError("part_size: must not be negative");
  if (part_size == 0) {
    // The default, or the smallest whole number of MiB that fits 10,000 parts.
    int64_t needed = (total_size + kMaxParts - 1) / kMaxParts;
    part_size = std::max(kDefaultPartSize, (needed + kMiB - 1) / kMiB * kMiB);
  }
  if (part_size < kMinPartSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "part_size: ", part_size, " is below OSS's minimum of ", kMinPartSize, " bytes"));
  }
  if (part_size > kMaxPartSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "part_size: ", part_size, " is above OSS's maximum of ", kMaxPartSize, " bytes"));
  }
  int64_t count = (total_size + part_size - 1) / part_size;
  if (count > kMaxParts) {
    return absl::InvalidArgumentError(absl::StrCat(
        "part_size: ", part_size, " cuts ", total_size, " bytes into ", count,
        " parts; OSS allows at most ", kMaxParts, " (use at least ",
        (total_size + kMaxParts - 1) / kMaxParts, ")"));
  }
  v1::MultipartPlan plan;
  plan.set_total_size(total_size);
  plan.set_part_size(part_size);
  plan.set_part_count(static_cast<int32_t>(count));
  return plan;
}

int64_t PartSize(const v1::MultipartPlan& plan, int number) {
  if (number < plan.part_count()) return plan.part_size();
  return plan.total_size() - plan.part_size() * (plan.part_count() - 1);
}

absl::Status MultipartIssuer::Create(const auth::Identity& caller,
                                     const v1::CreateMultipartUploadRequest& req,
                                     v1::CreateMultipartUploadResponse* resp) {
  PreparedIntent c;
  UB_RETURN_IF_ERROR(PrepareIntent(config_, caller, req.bucket(), req.metadata(), clock_.Now(), &c));
  const config::Bucket* bucket = c.bucket;
  if (req.key().empty()) return absl::InvalidArgumentError("key: required for a multipart upload");
  UB_RETURN_IF_ERROR(common::CheckObjectKey("key", req.key()));
  UB_RETURN_IF_ERROR(auth::CheckKey(caller, req.key(), false));
  if (req.content_type().empty()) {
    return absl::InvalidArgumentError("content_type: required (it becomes the object's type)");
  }
  std::vector<std::string> types;
  UB_RETURN_IF_ERROR(ResolveContentTypes(caller, {req.content_type()}, &types));
  UB_ASSIGN_OR_RETURN(v1::MultipartPlan plan, PlanParts(req.total_size(), req.part_size()));
  if (req.total_size() > caller.scope.max_size) {
    return absl::PermissionDeniedError(absl::StrCat("total_size: ", req.total_size(),
                                                    " exceeds caller '", caller.name,
                                                    "' limit of ", caller.scope.max_size));
  }
  UB_ASSIGN_OR_RETURN(policy::Credential cred, creds_.Get());
  const absl::Time now = c.now;
  UB_ASSIGN_OR_RETURN(absl::Duration ttl, ClampTtl(config_, caller, req.ttl_seconds(), cred, now));

  UB_ASSIGN_OR_RETURN(std::string oss_upload_id,
                      oss_.Initiate(*bucket, req.key(), req.content_type(),
                                    /*forbid_overwrite=*/!req.allow_overwrite()));
  plan.set_oss_upload_id(oss_upload_id);
  plan.set_allow_overwrite(req.allow_overwrite());

  v1::Upload& intent = c.intent;
  intent.set_key(req.key());
  intent.set_min_size(plan.total_size());
  intent.set_max_size(plan.total_size());
  intent.add_content_types(req.content_type());
  *intent.mutable_created_at() = ToProto(now);
  *intent.mutable_expires_at() = ToProto(now + ttl);
  intent.set_method(v1::UPLOAD_METHOD_MULTIPART);
  intent.set_signature_version(v1::SIGNATURE_VERSION_V4);
  *intent.mutable_multipart() = plan;
  resp->set_upload_id(intent.upload_id());
  *resp->mutable_plan() = plan;
  *resp->mutable_expires_at() = intent.expires_at();
  absl::Status stored = ledger::CreateIntentSync(ledger_, std::move(intent));
  if (!stored.ok()) {
    // Nobody can use the OSS upload without the intent: free it now.
    (void)oss_.Abort(*bucket, req.key(), oss_upload_id);
    return stored;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Upload> MultipartIssuer::LoadPending(const auth::Identity& caller,
                                                        const std::string& upload_id,
                                                        bool multipart_only) {
  if (upload_id.empty()) return absl::InvalidArgumentError("upload_id: required");
  absl::StatusOr<v1::Upload> upload = ledger_.GetUpload(upload_id);
  if (absl::IsNotFound(upload.status())) return NotFound(upload_id);
  if (!upload.ok()) return upload.status();
  // Uploads outside the caller's scope, or issued to another caller, look
  // absent, so ids cannot be probed. These calls act on the upload, so
  // read_callers does not extend to them: only the issuing caller may.
  if (upload->caller() != caller.name || !auth::CheckBucket(caller, upload->bucket()).ok() ||
      !auth::CheckKey(caller, upload->key(), upload->key_is_prefix()).ok()) {
    return NotFound(upload_id);
  }
  if (multipart_only && upload->method() != v1::UPLOAD_METHOD_MULTIPART) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload_id: '", upload_id, "' is not a multipart upload"));
  }
  if (upload->state() != v1::UPLOAD_STATE_PENDING) {
    return absl::FailedPreconditionError(absl::StrCat("upload_id: '", upload_id, "' is ",
                                                      v1::UploadState_Name(upload->state()),
                                                      ", not PENDING"));
  }
  return upload;
}

absl::StatusOr<absl::Duration> MultipartIssuer::UrlTtl(const auth::Identity& caller,
                                                       const v1::Upload& intent,
                                                       int64_t ttl_seconds,
                                                       const policy::Credential& cred,
                                                       absl::Time now) const {
  UB_ASSIGN_OR_RETURN(absl::Duration ttl, ClampTtl(config_, caller, ttl_seconds, cred, now));
  absl::Duration left = absl::Floor(FromProto(intent.expires_at()) - now, absl::Seconds(1));
  if (left < absl::Seconds(1)) {
    return absl::FailedPreconditionError(
        absl::StrCat("upload_id: '", intent.upload_id(), "' has expired"));
  }
  return std::min(ttl, left);
}

absl::Status MultipartIssuer::SignParts(const auth::Identity& caller,
                                        const v1::SignUploadPartsRequest& req,
                                        v1::SignUploadPartsResponse* resp) {
  UB_ASSIGN_OR_RETURN(v1::Upload intent, LoadPending(caller, req.upload_id(), true));
  const v1::MultipartPlan& plan = intent.multipart();
  std::vector<int> numbers(req.part_numbers().begin(), req.part_numbers().end());
  if (numbers.empty()) {
    for (int n = 1; n <= plan.part_count(); ++n) numbers.push_back(n);
  }
  if (numbers.size() > static_cast<size_t>(kMaxPartsPerCall)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "part_numbers: ", numbers.size(), " entries, at most ", kMaxPartsPerCall,
        " parts per call (this plan has ", plan.part_count(), "; ask in batches)"));
  }
  // Each part is signed once, however often it was asked for.
  common::Deduplicate(numbers);
  for (int n : numbers) {
    if (n < 1 || n > plan.part_count()) {
      return absl::InvalidArgumentError(absl::StrCat("part_numbers: ", n, " is outside 1..",
                                                     plan.part_count(), " (the plan's parts)"));
    }
  }
  UB_ASSIGN_OR_RETURN(const config::Bucket* bucket, IntentBucket(config_, intent));
  UB_ASSIGN_OR_RETURN(policy::Credential cred, creds_.Get());
  const absl::Time now = clock_.Now();
  UB_ASSIGN_OR_RETURN(absl::Duration ttl, UrlTtl(caller, intent, req.ttl_seconds(), cred, now));
  policy::PresignInput in = PresignFor("PUT", *bucket, intent, now, ttl);
  in.additional_headers = {"content-length"};
  resp->mutable_parts()->Reserve(static_cast<int>(numbers.size()));
  for (int n : numbers) {
    const int64_t size = PartSize(plan, n);
    in.query = {{"partNumber", absl::StrCat(n)}, {"uploadId", plan.oss_upload_id()}};
    in.headers = {{"Content-Length", absl::StrCat(size)}};
    policy::PresignedRequest signed_req = policy::PresignV4(in, cred);
    v1::SignedPart* part = resp->add_parts();
    part->set_part_number(n);
    part->set_size(size);
    part->set_offset(plan.part_size() * (n - 1));
    part->set_url(std::move(signed_req.url));
    AddHeaders(signed_req.headers, part->mutable_headers());
  }
  *resp->mutable_expires_at() = ToProto(now + ttl);
  return absl::OkStatus();
}

absl::Status MultipartIssuer::ListParts(const auth::Identity& caller,
                                        const v1::ListUploadedPartsRequest& req,
                                        v1::ListUploadedPartsResponse* resp) {
  UB_ASSIGN_OR_RETURN(v1::Upload intent, LoadPending(caller, req.upload_id(), true));
  UB_ASSIGN_OR_RETURN(const config::Bucket* bucket, IntentBucket(config_, intent));
  UB_ASSIGN_OR_RETURN(std::vector<ossapi::HeldPart> parts,
                      oss_.ListParts(*bucket, intent.key(), intent.multipart().oss_upload_id()));
  for (const ossapi::HeldPart& p : parts) {
    v1::UploadedPart* out = resp->add_parts();
    out->set_part_number(p.number);
    out->set_size(p.size);
    out->set_etag(p.etag);
  }
  *resp->mutable_plan() = intent.multipart();
  return absl::OkStatus();
}

absl::Status MultipartIssuer::Complete(const auth::Identity& caller,
                                       const v1::CompleteMultipartUploadRequest& req,
                                       v1::CompleteMultipartUploadResponse* resp) {
  UB_ASSIGN_OR_RETURN(v1::Upload intent, LoadPending(caller, req.upload_id(), true));
  UB_ASSIGN_OR_RETURN(const config::Bucket* bucket, IntentBucket(config_, intent));
  UB_ASSIGN_OR_RETURN(policy::Credential cred, creds_.Get());
  const absl::Time now = clock_.Now();
  UB_ASSIGN_OR_RETURN(absl::Duration ttl, UrlTtl(caller, intent, req.ttl_seconds(), cred, now));
  policy::PresignInput in = PresignFor("POST", *bucket, intent, now, ttl);
  in.query = {{"uploadId", intent.multipart().oss_upload_id()}};
  // A Content-Type is signed so HTTP clients that add one to every POST send
  // the signed one; the body is empty: OSS assembles every part it holds.
  in.headers = {{"Content-Type", "application/xml"},
                {"x-oss-callback", callback_param_.Build(intent.upload_id())},
                {"x-oss-complete-all", "yes"}};
  if (!intent.multipart().allow_overwrite()) {
    in.headers.emplace_back("x-oss-forbid-overwrite", "true");
  }
  policy::PresignedRequest signed_req = policy::PresignV4(in, cred);
  resp->set_url(std::move(signed_req.url));
  resp->set_method("POST");
  AddHeaders(signed_req.headers, resp->mutable_headers());
  *resp->mutable_expires_at() = ToProto(now + ttl);
  return absl::OkStatus();
}

absl::Status MultipartIssuer::Abort(const auth::Identity& caller, const v1::AbortUploadRequest& req,
                                    v1::AbortUploadResponse* resp) {
  UB_ASSIGN_OR_RETURN(v1::Upload intent, LoadPending(caller, req.upload_id(), false));
  // An abort says so (expiry_reason ABORTED) and comes before expires_at;
  // past it, the reconciler settles the intent (and aborts a multipart one).
  if (clock_.Now() >= FromProto(intent.expires_at())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "upload_id: '", req.upload_id(), "' has expired; the reconciler settles it"));
  }
  if (intent.method() == v1::UPLOAD_METHOD_MULTIPART) {
    UB_ASSIGN_OR_RETURN(const config::Bucket* bucket, IntentBucket(config_, intent));
    absl::Status aborted =
        oss_.Abort(*bucket, intent.key(), intent.multipart().oss_upload_id());
    // NotFound: OSS no longer has the upload (aborted before, or completed
    // and its callback still on the way, which then finds the intent expired).
    if (!aborted.ok() && !absl::IsNotFound(aborted)) return aborted;
  }
  UB_ASSIGN_OR_RETURN(v1::Event event, ledger::ExpireUploadSync(ledger_, req.upload_id(),
                                                                v1::EXPIRY_REASON_ABORTED));
  *resp->mutable_upload() = event.upload_expired().upload();
  resp->set_cursor(event.cursor());
  return absl::OkStatus();
}

}  // namespace uploadbroker::issue
