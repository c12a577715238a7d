#include "ossapi/multipart_client.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ossapi/xml.h"
#include "policy/presign.h"

namespace uploadbroker::ossapi {

absl::StatusOr<OssAnswer> MultipartClient::Send(
    const config::Bucket& bucket, const std::string& key, const std::string& method,
    std::vector<std::pair<std::string, std::string>> query,
    std::vector<std::pair<std::string, std::string>> headers, const std::string& what) {
  return SendSigned(creds_, clock_, timeout_, bucket,
                    {method, key, std::move(query), std::move(headers), what});
}

absl::StatusOr<std::string> MultipartClient::Initiate(const config::Bucket& bucket,
                                                      const std::string& key,
                                                      const std::string& content_type,
                                                      bool forbid_overwrite) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", content_type}};
  if (forbid_overwrite) headers.emplace_back("x-oss-forbid-overwrite", "true");
  // The object is private whatever the bucket's ACL; the uploader's
  // Complete cannot change that (its x-oss-* headers are all signed).
  headers.emplace_back(policy::kObjectAcl, policy::kPrivateAcl);
  UB_ASSIGN_OR_RETURN(OssAnswer answer,
                      Send(bucket, key, "POST", {{"uploads", ""}}, std::move(headers),
                           absl::StrCat("InitiateMultipartUpload ", bucket.name, "/", key)));
  absl::StatusOr<XmlNode> root = ParseXml(answer.body);
  if (!root.ok()) {
    return absl::UnavailableError(
        absl::StrCat("InitiateMultipartUpload: OSS's answer: ", root.status().message()));
  }
  std::string id = root->ChildText("UploadId");
  if (id.empty()) {
    return absl::UnavailableError("InitiateMultipartUpload: OSS's answer has no UploadId");
  }
  return id;
}

absl::StatusOr<std::vector<HeldPart>> MultipartClient::ListParts(const config::Bucket& bucket,
                                                                 const std::string& key,
                                                                 const std::string& upload_id) {
  std::vector<HeldPart> parts;
  std::string marker = "0";
  for (int page = 0; page < 11; ++page) {  // 10,000 parts at 1,000 a page
    UB_ASSIGN_OR_RETURN(OssAnswer answer,
                        Send(bucket, key, "GET",
                             {{"max-parts", "1000"}, {"part-number-marker", marker},
                              {"uploadId", upload_id}},
                             {}, absl::StrCat("ListParts ", bucket.name, "/", key)));
    absl::StatusOr<XmlNode> root = ParseXml(answer.body);
    if (!root.ok()) {
      return absl::UnavailableError(
          absl::StrCat("ListParts: OSS's answer: ", root.status().message()));
    }
    for (const XmlNode* part : root->Children("Part")) {
      HeldPart held;
      if (!absl::SimpleAtoi(part->ChildText("PartNumber"), &held.number) ||
          !absl::SimpleAtoi(part->ChildText("Size"), &held.size)) {
        return absl::UnavailableError("ListParts: OSS's answer has a malformed <Part>");
      }
      held.etag = part->ChildText("ETag");
      parts.push_back(std::move(held));
    }
    if (root->ChildText("IsTruncated") != "true") return parts;
    marker = root->ChildText("NextPartNumberMarker");
  }
  return absl::UnavailableError("ListParts: more pages than 10,000 parts can fill");
}

absl::Status MultipartClient::Abort(const config::Bucket& bucket, const std::string& key,
                                    const std::string& upload_id) {
  return Send(bucket, key, "DELETE", {{"uploadId", upload_id}}, {},
              absl::StrCat("AbortMultipartUpload ", bucket.name, "/", key))
      .status();
}

}  // namespace uploadbroker::ossapi
