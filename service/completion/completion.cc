#include "completion/completion.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace uploadbroker::completion {
namespace {

// "image/png; charset=x" -> "image/png", lowercase.
std::string MediaType(absl::string_view v) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(
      std::pair<absl::string_view, absl::string_view>(absl::StrSplit(v, absl::MaxSplits(';', 1))).first));
}

}  // namespace

int PartCountOf(const std::string& etag) {
  absl::string_view e = etag;
  size_t dash = e.rfind('-');
  int count = 0;
  if (dash == absl::string_view::npos || !absl::SimpleAtoi(e.substr(dash + 1), &count) ||
      count < 1) {
    return 0;
  }
  return count;
}

absl::Status CheckAgainstIntent(const ReportedObject& object, const v1::Upload& intent) {
  if (intent.state() == v1::UPLOAD_STATE_EXPIRED) {
    return absl::FailedPreconditionError("upload_id: the intent expired before the upload was confirmed");
  }
  if (intent.state() == v1::UPLOAD_STATE_COMPLETED) {
    const v1::Completion& done = intent.completion();
    if (done.key() != object.key || done.etag() != object.etag) {
      return absl::FailedPreconditionError(absl::StrCat(
          "upload_id: already completed by object '", done.key(), "'; a second object is not accepted"));
    }
    // A repeat must be the very same report: another bucket or size under
    // the same key and ETag is not the object that completed the intent.
    if (object.bucket != intent.bucket() || object.size != done.size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "upload_id: already completed by '", intent.bucket(), "/", done.key(), "' (size ",
          done.size(), "); this report names '", object.bucket, "/", object.key, "' (size ",
          object.size, ")"));
    }
    return absl::OkStatus();  // the same upload reported again
  }
  if (object.bucket != intent.bucket()) {
    return absl::PermissionDeniedError(absl::StrCat("bucket: '", object.bucket, "' is not the intent's bucket"));
  }
  bool key_ok = intent.key_is_prefix() ? absl::StartsWith(object.key, intent.key())
                                       : object.key == intent.key();
  if (!key_ok) {
    return absl::PermissionDeniedError(absl::StrCat("object: '", object.key, "' is outside the intent's ",
                                                    intent.key_is_prefix() ? "prefix" : "key"));
  }
  if (object.size < intent.min_size() || object.size > intent.max_size()) {
    return absl::PermissionDeniedError(absl::StrCat("size: ", object.size, " is outside [",
                                                    intent.min_size(), ", ", intent.max_size(), "]"));
  }
  if (intent.method() == v1::UPLOAD_METHOD_MULTIPART) {
    // The parts were signed one size each, so the size check above already
    // rules out a different cut; OSS's ETag confirms the count.
    if (object.operation != kCompleteMultipartUpload) {
      return absl::PermissionDeniedError(absl::StrCat(
          "operation: '", object.operation, "' does not complete a multipart upload"));
    }
    if (PartCountOf(object.etag) != intent.multipart().part_count()) {
      return absl::PermissionDeniedError(absl::StrCat("etag: '", object.etag, "' is not of ",
                                                      intent.multipart().part_count(), " parts"));
    }
  }
  if (intent.content_types_size() > 0) {
    std::string got = MediaType(object.content_type);
    bool type_ok = std::any_of(intent.content_types().begin(), intent.content_types().end(),
                               [&](const std::string& t) { return MediaType(t) == got; });
    if (!type_ok) {
      return absl::PermissionDeniedError(
          absl::StrCat("mimeType: '", object.content_type, "' is not allowed by the intent"));
    }
  }
  return absl::OkStatus();
}

v1::Completion ToCompletion(const ReportedObject& object, v1::CompletionSource source) {
  v1::Completion c;
  c.set_key(object.key);
  c.set_size(object.size);
  c.set_etag(object.etag);
  c.set_content_type(object.content_type);
  c.set_crc64(object.crc64);
  c.set_content_md5(object.content_md5);
  c.mutable_image_info()->set_height(object.image_height);
  c.mutable_image_info()->set_width(object.image_width);
  c.mutable_image_info()->set_format(object.image_format);
  c.set_client_ip(object.client_ip);
  c.set_request_id(object.request_id);
  c.set_operation(object.operation);
  if (object.operation == kCompleteMultipartUpload) c.set_part_count(PartCountOf(object.etag));
  c.set_source(source);
  return c;
}

}  // namespace uploadbroker::completion
