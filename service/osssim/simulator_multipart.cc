// The multipart operations of Simulator (oss-protocol.md §4.8): request
// parsing, signature checks and OSS's XML answers around UploadStore.
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/encoding.h"
#include "ossapi/xml.h"
#include "osssim/simulator.h"

namespace uploadbroker::osssim {
namespace {

constexpr char kXmlHead[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
constexpr char kXmlNs[] = " xmlns=\"http://doc.oss-cn-hangzhou.aliyuncs.com\"";

http::Response Xml(std::string body, const std::string& request_id) {
  http::Response r;
  r.content_type = "application/xml";
  r.body = absl::StrCat(kXmlHead, body);
  r.headers.emplace_back("x-oss-request-id", request_id);
  return r;
}

std::string Iso8601(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

// The <Part> list of a CompleteMultipartUpload body, read with the
// project's one XML reader (ossapi/xml.h); nullopt when the body is not
// well-formed XML, its root is not CompleteMultipartUpload, or a Part lacks
// a PartNumber or ETag.
std::optional<std::vector<CompletePart>> ParseCompleteBody(absl::string_view xml) {
  absl::StatusOr<ossapi::XmlNode> root = ossapi::ParseXml(xml);
  if (!root.ok() || root->name != "CompleteMultipartUpload") return std::nullopt;
  std::vector<CompletePart> parts;
  for (const ossapi::XmlNode* node : root->Children("Part")) {
    const ossapi::XmlNode* number = node->Child("PartNumber");
    const ossapi::XmlNode* etag = node->Child("ETag");
    CompletePart part;
    if (number == nullptr || etag == nullptr ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(number->text), &part.number)) {
      return std::nullopt;
    }
    part.etag = std::string(absl::StripAsciiWhitespace(etag->text));
    parts.push_back(std::move(part));
  }
  return parts;
}

std::map<std::string, std::string> MetaHeaders(const http::Request& req) {
  std::map<std::string, std::string> metadata;
  for (const auto& [name, value] : req.headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (absl::StartsWith(lower, "x-oss-meta-")) metadata[lower.substr(11)] = value;
  }
  return metadata;
}

bool IsTrue(const std::string& value) { return absl::EqualsIgnoreCase(value, "true"); }

}  // namespace

http::Response Simulator::InitiateUpload(const http::Request& req, const std::string& bucket,
                                         const std::string& key, const QueryParams& query,
                                         const std::string& request_id) {
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  UploadInfo info;
  info.bucket = bucket;
  info.key = key;
  info.content_type = req.Header("Content-Type");
  if (info.content_type.empty()) info.content_type = "application/octet-stream";
  info.metadata = MetaHeaders(req);
  info.forbid_overwrite = IsTrue(req.Header("x-oss-forbid-overwrite"));
  if (auto e = ParseObjectAcl(req.Header("x-oss-object-acl"), &info.acl)) {
    return ErrorResponse(*e, request_id);
  }
  if (info.forbid_overwrite && store_.Head(bucket, key)) {
    return ErrorResponse({409, "FileAlreadyExists",
                          "The object you specified already exists and can not be overwritten."},
                         request_id);
  }
  std::string id = uploads_.Initiate(std::move(info));
  return Xml(absl::StrCat("<InitiateMultipartUploadResult", kXmlNs, "><Bucket>", XmlEscape(bucket),
                          "</Bucket><Key>", XmlEscape(key), "</Key><UploadId>", id,
                          "</UploadId></InitiateMultipartUploadResult>"),
             request_id);
}

http::Response Simulator::UploadPart(const http::Request& req, const std::string& bucket,
                                     const std::string& key, const QueryParams& query,
                                     const std::string& request_id) {
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  int number = 0;
  if (!absl::SimpleAtoi(QueryParam(query, "partNumber").value_or(""), &number)) {
    return ErrorResponse(
        InvalidArgument("Part number must be an integer between 1 and 10000, inclusive."),
        request_id);
  }
  absl::StatusOr<std::shared_ptr<StagedFile>> body = StagedBody(req, /*form=*/false);
  if (!body.ok()) {
    return ErrorResponse({500, "InternalError", std::string(body.status().message())}, request_id);
  }
  if (auto e = CheckContentMd5(req, **body)) return ErrorResponse(*e, request_id);
  auto part = uploads_.UploadPart(bucket, key, *QueryParam(query, "uploadId"), number, **body);
  if (auto* e = std::get_if<OssError>(&part)) return ErrorResponse(*e, request_id);
  http::Response r;
  r.content_type = "application/xml";
  r.headers.emplace_back("ETag", std::get<PartInfo>(part).etag);
  r.headers.emplace_back("x-oss-request-id", request_id);
  return r;
}

http::Response Simulator::ListParts(const http::Request& req, const std::string& bucket,
                                    const std::string& key, const QueryParams& query,
                                    const std::string& request_id) {
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  int marker = 0;
  int max_parts = 1000;
  std::optional<std::string> marker_text = QueryParam(query, "part-number-marker");
  std::optional<std::string> max_text = QueryParam(query, "max-parts");
  if ((marker_text && !absl::SimpleAtoi(*marker_text, &marker)) ||
      (max_text && (!absl::SimpleAtoi(*max_text, &max_parts) || max_parts < 1 ||
                    max_parts > 1000))) {
    return ErrorResponse(InvalidArgument("Invalid part-number-marker or max-parts."), request_id);
  }
  std::string upload_id = *QueryParam(query, "uploadId");
  auto page = uploads_.ListParts(bucket, key, upload_id, marker, max_parts);
  if (auto* e = std::get_if<OssError>(&page)) return ErrorResponse(*e, request_id);
  const UploadStore::PartPage& p = std::get<UploadStore::PartPage>(page);
  std::string body = absl::StrCat(
      "<ListPartsResult", kXmlNs, "><Bucket>", XmlEscape(bucket), "</Bucket><Key>",
      XmlEscape(key), "</Key><UploadId>", XmlEscape(upload_id),
      "</UploadId><PartNumberMarker>", marker, "</PartNumberMarker><NextPartNumberMarker>",
      p.next_marker, "</NextPartNumberMarker><MaxParts>", max_parts,
      "</MaxParts><IsTruncated>", p.truncated ? "true" : "false", "</IsTruncated>");
  for (const PartInfo& part : p.parts) {
    absl::StrAppend(&body, "<Part><PartNumber>", part.number, "</PartNumber><LastModified>",
                    Iso8601(part.last_modified), "</LastModified><ETag>", XmlEscape(part.etag),
                    "</ETag><Size>", part.size, "</Size></Part>");
  }
  absl::StrAppend(&body, "</ListPartsResult>");
  return Xml(std::move(body), request_id);
}

http::Response Simulator::CompleteUpload(const http::Request& req, const std::string& bucket,
                                         const std::string& key, const QueryParams& query,
                                         const std::string& request_id) {
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  std::optional<CallbackParam> callback;
  std::map<std::string, std::string> custom;
  if (auto e = RequestCallback(req, query, callback, custom)) return ErrorResponse(*e, request_id);
  bool all = absl::EqualsIgnoreCase(req.Header("x-oss-complete-all"), "yes");
  std::vector<CompletePart> parts;
  if (all) {
    if (!req.body.empty()) {
      return ErrorResponse(
          InvalidArgument("Should not specify both complete all header and http body."),
          request_id);
    }
  } else {
    std::optional<std::vector<CompletePart>> parsed = ParseCompleteBody(req.body);
    if (!parsed) {
      return ErrorResponse({400, "MalformedXML",
                            "The XML you provided was not well-formed or did not validate "
                            "against our published schema."},
                           request_id);
    }
    parts = *std::move(parsed);
  }
  auto done = uploads_.Complete(bucket, key, *QueryParam(query, "uploadId"), parts, all,
                                IsTrue(req.Header("x-oss-forbid-overwrite")));
  if (auto* e = std::get_if<OssError>(&done)) return ErrorResponse(*e, request_id);
  const UploadStore::Completed& c = std::get<UploadStore::Completed>(done);
  http::Response plain = Xml(
      absl::StrCat("<CompleteMultipartUploadResult", kXmlNs, "><Location>http://127.0.0.1:",
                   port(), "/", XmlEscape(bucket), "/", XmlEscape(common::UriEncode(key, true)),
                   "</Location><Bucket>", XmlEscape(bucket), "</Bucket><Key>", XmlEscape(key),
                   "</Key><ETag>", XmlEscape(c.object.etag),
                   "</ETag></CompleteMultipartUploadResult>"),
      request_id);
  plain.headers.emplace_back("ETag", c.object.etag);
  plain.headers.emplace_back("x-oss-hash-crc64ecma", c.object.crc64);
  return Finish(callback, custom, c.object, bucket, key, "CompleteMultipartUpload", req,
                request_id, std::move(plain));
}

http::Response Simulator::AbortUpload(const http::Request& req, const std::string& bucket,
                                      const std::string& key, const QueryParams& query,
                                      const std::string& request_id) {
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  if (auto e = uploads_.Abort(bucket, key, *QueryParam(query, "uploadId"))) {
    return ErrorResponse(*e, request_id);
  }
  http::Response r;
  r.status = 204;
  r.content_type = "application/xml";
  r.headers.emplace_back("x-oss-request-id", request_id);
  return r;
}

}  // namespace uploadbroker::osssim
