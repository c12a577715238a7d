#include "ossapi/list_objects.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "common/status_macros.h"
#include "ossapi/signed_request.h"
#include "ossapi/xml.h"

namespace uploadbroker::ossapi {
namespace {

absl::StatusOr<absl::Time> ParseIso8601(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", text, &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("LastModified '", text, "': ", err));
  }
  return t;
}

}  // namespace

absl::StatusOr<ListPage> ParseListObjectsV2(absl::string_view xml) {
  absl::StatusOr<XmlNode> root = ParseXml(xml);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ListObjectsV2 answer: ", root.status().message()));
  }
  if (root->name != "ListBucketResult") {
    return absl::InvalidArgumentError(
        absl::StrCat("ListObjectsV2 answer is <", root->name, ">, not <ListBucketResult>"));
  }
  const std::string is_truncated = root->ChildText("IsTruncated");
  const std::string encoding = root->ChildText("EncodingType");
  ListPage page;
  if (is_truncated != "true" && is_truncated != "false") {
    return absl::InvalidArgumentError("ListObjectsV2 answer: IsTruncated is not true or false");
  }
  page.truncated = is_truncated == "true";
  page.next_token = root->ChildText("NextContinuationToken");
  if (page.truncated && page.next_token.empty()) {
    return absl::InvalidArgumentError(
        "ListObjectsV2 answer: truncated without a NextContinuationToken");
  }
  for (const XmlNode* contents : root->Children("Contents")) {
    ListedObject o;
    if (encoding == "url") {
      absl::StatusOr<std::string> key = common::PercentDecode(contents->ChildText("Key"), false);
      if (!key.ok()) {
        return absl::InvalidArgumentError("ListObjectsV2 answer: a Key is not URL-encoded");
      }
      o.key = *std::move(key);
    } else {
      o.key = contents->ChildText("Key");
    }
    if (o.key.empty()) {
      return absl::InvalidArgumentError("ListObjectsV2 answer: a Contents has no Key");
    }
    UB_ASSIGN_OR_RETURN(o.last_modified, ParseIso8601(contents->ChildText("LastModified")));
    if (!absl::SimpleAtoi(contents->ChildText("Size"), &o.size) || o.size < 0) {
      return absl::InvalidArgumentError("ListObjectsV2 answer: a Size is not a byte count");
    }
    o.etag = contents->ChildText("ETag");
    page.objects.push_back(std::move(o));
  }
  return page;
}

absl::StatusOr<ListPage> ObjectLister::List(const config::Bucket& bucket,
                                            const std::string& prefix,
                                            const std::string& continuation_token) {
  SignedRequest request;
  request.method = "GET";
  request.query = {{"list-type", "2"},
                   {"encoding-type", "url"},
                   {"max-keys", absl::StrCat(options_.page_size)},
                   {"prefix", prefix}};
  if (!continuation_token.empty()) {
    request.query.emplace_back("continuation-token", continuation_token);
  }
  request.what = absl::StrCat("ListObjectsV2 ", bucket.name, "/", prefix);
  UB_ASSIGN_OR_RETURN(OssAnswer answer,
                      SendSigned(creds_, clock_, options_.timeout, bucket, request));
  absl::StatusOr<ListPage> page = ParseListObjectsV2(answer.body);
  if (!page.ok()) {
    return absl::UnavailableError(absl::StrCat(request.what, ": ", page.status().message()));
  }
  return page;
}

absl::StatusOr<std::optional<ListedObject>> ObjectLister::FindFirst(
    const config::Bucket& bucket, const std::string& prefix,
    const std::function<bool(const ListedObject&)>& match) {
  std::string token;
  for (int i = 0; i < options_.max_pages; ++i) {
    UB_ASSIGN_OR_RETURN(ListPage page, List(bucket, prefix, token));
    for (ListedObject& o : page.objects) {
      if (match(o)) return std::move(o);
    }
    if (!page.truncated) return std::nullopt;
    token = std::move(page.next_token);
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("ListObjectsV2 ", bucket.name, "/", prefix, ": more than ", options_.max_pages,
                   " pages of ", options_.page_size, " keys without a match"));
}

}  // namespace uploadbroker::ossapi
