// The single-request object operations of Simulator: PostObject, PutObject,
// HeadObject/GetObject, and the streamed request bodies they consume.
#include <fcntl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/encoding.h"
#include "common/oss_names.h"
#include "osssim/multipart.h"
#include "osssim/request_auth.h"
#include "osssim/simulator.h"

namespace uploadbroker::osssim {
namespace {

// x-oss-forbid-overwrite (a PUT header or a PostObject field): "true" or
// "false" (any case), absent means false; anything else is an error.
std::optional<OssError> ParseForbidOverwrite(const std::string& value, bool* forbid) {
  *forbid = absl::EqualsIgnoreCase(value, "true");
  if (value.empty() || *forbid || absl::EqualsIgnoreCase(value, "false")) return std::nullopt;
  return InvalidArgument("x-oss-forbid-overwrite must be true or false.");
}

// Where a Put failed: 409 FileAlreadyExists for a forbidden overwrite, else 500.
OssError StoreError(const absl::Status& status) {
  if (absl::IsAlreadyExists(status)) {
    return {409, "FileAlreadyExists", std::string(status.message())};
  }
  return {500, "InternalError", std::string(status.message())};
}

OssError Internal(const absl::Status& status) {
  return {500, "InternalError", std::string(status.message())};
}

// PostObject's form fields other than the file, and the file, at most.
constexpr uint64_t kMaxFormFieldBytes = 8 * 1024 * 1024 + 64 * 1024;

}  // namespace

std::shared_ptr<http::BodySink> Simulator::StreamBody(const http::Request& head) {
  std::string bucket;
  std::string key;
  if (ParseTarget(head, &bucket, &key)) return nullptr;  // refused without the body
  const bool form = head.method == "POST" && key.empty();
  if (!form && !(head.method == "PUT" && !key.empty())) return nullptr;
  std::string entity_head = form ? FormEntityHead(head.Header("Content-Type")) : "";
  uint64_t limit = options_.max_object_bytes + (form ? kMaxFormFieldBytes + entity_head.size() : 0);
  absl::StatusOr<std::shared_ptr<StagedFile>> staged =
      StagedFile::Create(store_.staging_dir(), limit, /*md5=*/!form);
  if (!staged.ok()) return nullptr;  // then refused as too large for memory
  if (!entity_head.empty() && !(*staged)->Write(entity_head).ok()) return nullptr;
  return *std::move(staged);
}

absl::StatusOr<std::shared_ptr<StagedFile>> Simulator::StagedBody(const http::Request& req,
                                                                  bool form) {
  if (auto staged = std::dynamic_pointer_cast<StagedFile>(req.body_sink)) return staged;
  std::string entity_head = form ? FormEntityHead(req.Header("Content-Type")) : "";
  absl::StatusOr<std::shared_ptr<StagedFile>> staged = StagedFile::Create(
      store_.staging_dir(), entity_head.size() + req.body.size(), /*md5=*/!form);
  if (!staged.ok()) return staged.status();
  if (absl::Status s = (*staged)->Write(entity_head); !s.ok()) return s;
  if (absl::Status s = (*staged)->Write(req.body); !s.ok()) return s;
  if (absl::Status s = (*staged)->Finish(); !s.ok()) return s;
  return staged;
}

std::optional<OssError> Simulator::CheckContentMd5(const http::Request& req,
                                                   const StagedFile& body) {
  std::string sent = req.Header("Content-MD5");
  if (sent.empty() || sent == common::Base64Encode(body.md5())) return std::nullopt;
  return OssError{400, "InvalidDigest", "The Content-MD5 you specified is not valid."};
}

http::Response Simulator::PostObject(const http::Request& req, const std::string& bucket,
                                     const std::string& request_id) {
  absl::StatusOr<std::shared_ptr<StagedFile>> body = StagedBody(req, /*form=*/true);
  if (!body.ok()) return ErrorResponse(Internal(body.status()), request_id);
  absl::StatusOr<std::shared_ptr<StagedFile>> file =
      StagedFile::Create(store_.staging_dir(), options_.max_object_bytes);
  if (!file.ok()) return ErrorResponse(Internal(file.status()), request_id);
  absl::StatusOr<std::vector<FormPart>> parts =
      ParseFormFile(req.Header("Content-Type"), (*body)->path(), **file);
  if (!parts.ok() && absl::IsResourceExhausted(parts.status())) {
    return ErrorResponse({400, "EntityTooLarge",
                          "Your proposed upload exceeds the maximum allowed size."},
                         request_id);
  }
  if (!parts.ok() && !absl::IsInvalidArgument(parts.status())) {
    return ErrorResponse(Internal(parts.status()), request_id);
  }
  if (!parts.ok()) {
    return ErrorResponse({400, "MalformedPOSTRequest",
                          absl::StrCat("The body of your POST request is not well-formed "
                                       "multipart/form-data. ", parts.status().message())},
                         request_id);
  }
  body->reset();  // the raw form is not needed any more
  if (absl::Status s = (*file)->Finish(); !s.ok()) return ErrorResponse(Internal(s), request_id);
  if (!absl::EqualsIgnoreCase(parts->back().name, "file")) {
    return ErrorResponse(InvalidArgument("The file field must be the last form field."), request_id);
  }
  const FormPart& file_part = parts->back();
  FormFields fields;
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    std::string name = absl::AsciiStrToLower((*parts)[i].name);
    if (name == "file") return ErrorResponse(InvalidArgument("Only one file per request."), request_id);
    fields.emplace(name, (*parts)[i].value);
  }
  auto field = [&fields](const char* name) {
    auto it = fields.find(name);
    return it == fields.end() ? std::string() : it->second;
  };
  absl::Time now = absl::Now();
  if (auto e = CheckPostSignature(fields, options_.credentials, now)) return ErrorResponse(*e, request_id);
  std::string key = field("key");
  if (key.empty()) return ErrorResponse(InvalidArgument("The key form field is missing."), request_id);
  if (key.size() > common::kMaxObjectKeyBytes) {
    return ErrorResponse(InvalidArgument("The key is too long."), request_id);
  }
  if (auto e = CheckPostPolicy(fields, bucket, static_cast<int64_t>((*file)->size()), now)) {
    return ErrorResponse(*e, request_id);
  }
  ObjectAttributes attributes;
  if (auto e = ParseForbidOverwrite(field("x-oss-forbid-overwrite"), &attributes.forbid_overwrite)) {
    return ErrorResponse(*e, request_id);
  }
  if (auto e = ParseObjectAcl(field("x-oss-object-acl"), &attributes.acl)) {
    return ErrorResponse(*e, request_id);
  }
  std::optional<CallbackParam> callback;
  std::map<std::string, std::string> custom;
  for (const auto& [name, value] : fields) {
    if (absl::StartsWith(name, "x:")) custom[name] = value;
    if (absl::StartsWith(name, "x-oss-meta-")) attributes.metadata[name.substr(11)] = value;
  }
  if (fields.count("callback")) {
    absl::StatusOr<CallbackParam> p = ParseCallbackParam(fields["callback"]);
    if (!p.ok()) return ErrorResponse(InvalidArgument(std::string(p.status().message())), request_id);
    callback = *std::move(p);
  }
  attributes.content_type = fields.count("x-oss-content-type") ? fields["x-oss-content-type"]
                            : fields.count("content-type")     ? fields["content-type"]
                            : !file_part.content_type.empty()  ? file_part.content_type
                                                               : "application/octet-stream";
  absl::StatusOr<ObjectInfo> info = store_.Put(bucket, key, **file, std::move(attributes));
  if (!info.ok()) return ErrorResponse(StoreError(info.status()), request_id);

  http::Response plain;
  plain.headers.emplace_back("ETag", info->etag);
  plain.headers.emplace_back("x-oss-request-id", request_id);
  std::string status = field("success_action_status");
  if (status == "200") {
    plain.status = 200;
  } else if (status == "201") {
    plain.status = 201;
    plain.content_type = "application/xml";
    plain.body = absl::StrCat(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Bucket>", XmlEscape(bucket),
        "</Bucket><Location>http://127.0.0.1:", port(), "/", XmlEscape(bucket), "/",
        XmlEscape(common::UriEncode(key, true)), "</Location><Key>", XmlEscape(key),
        "</Key><ETag>", XmlEscape(info->etag), "</ETag></PostResponse>");
  } else {
    plain.status = 204;
  }
  return Finish(callback, custom, *info, bucket, key, "PostObject", req, request_id,
                std::move(plain));
}

http::Response Simulator::PutObject(const http::Request& req, const std::string& bucket,
                                    const std::string& key, const std::string& request_id) {
  QueryParams query = ParseQuery(req.query_raw);
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  ObjectAttributes attributes;
  if (auto e = ParseForbidOverwrite(req.Header("x-oss-forbid-overwrite"),
                                    &attributes.forbid_overwrite)) {
    return ErrorResponse(*e, request_id);
  }
  if (auto e = ParseObjectAcl(req.Header("x-oss-object-acl"), &attributes.acl)) {
    return ErrorResponse(*e, request_id);
  }
  std::optional<CallbackParam> callback;
  std::map<std::string, std::string> custom;
  if (auto e = RequestCallback(req, query, callback, custom)) return ErrorResponse(*e, request_id);
  for (const auto& [name, value] : req.headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (absl::StartsWith(lower, "x-oss-meta-")) attributes.metadata[lower.substr(11)] = value;
  }
  attributes.content_type = req.Header("Content-Type");
  if (attributes.content_type.empty()) attributes.content_type = "application/octet-stream";
  absl::StatusOr<std::shared_ptr<StagedFile>> body = StagedBody(req, /*form=*/false);
  if (!body.ok()) return ErrorResponse(Internal(body.status()), request_id);
  if (auto e = CheckContentMd5(req, **body)) return ErrorResponse(*e, request_id);
  absl::StatusOr<ObjectInfo> info = store_.Put(bucket, key, **body, std::move(attributes));
  if (!info.ok()) return ErrorResponse(StoreError(info.status()), request_id);
  http::Response plain;
  plain.headers.emplace_back("ETag", info->etag);
  plain.headers.emplace_back("x-oss-request-id", request_id);
  plain.headers.emplace_back("x-oss-hash-crc64ecma", info->crc64);
  plain.headers.emplace_back("Content-MD5", info->content_md5);
  return Finish(callback, custom, *info, bucket, key, "PutObject", req, request_id,
                std::move(plain));
}

http::Response Simulator::ReadObject(const http::Request& req, const std::string& bucket,
                                     const std::string& key, const std::string& request_id) {
  QueryParams query = ParseQuery(req.query_raw);
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  // HEAD: the metadata alone; GET: the metadata and the bytes it names.
  std::optional<ObjectStore::Opened> object;
  if (req.method == "HEAD") {
    if (std::optional<ObjectInfo> info = store_.Head(bucket, key)) {
      object = ObjectStore::Opened{*std::move(info), -1};
    }
  } else {
    object = store_.Open(bucket, key);
  }
  if (!object) return ErrorResponse({404, "NoSuchKey", "The specified key does not exist."}, request_id);
  const ObjectInfo& info = object->info;
  http::Response r;
  r.content_type = info.content_type;
  r.file = std::make_shared<http::FileBody>(object->fd, static_cast<uint64_t>(info.size));
  r.headers.emplace_back("ETag", info.etag);
  r.headers.emplace_back("x-oss-request-id", request_id);
  r.headers.emplace_back("x-oss-hash-crc64ecma", info.crc64);
  r.headers.emplace_back("Content-MD5", info.content_md5);
  r.headers.emplace_back("Last-Modified", absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                                           info.last_modified, absl::UTCTimeZone()));
  for (const auto& [k, v] : info.metadata) r.headers.emplace_back("x-oss-meta-" + k, v);
  return r;
}

}  // namespace uploadbroker::osssim
