#include "ossapi/list_objects.h"

#include <expat.h>

#include <map>
#include <memory>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "common/status_macros.h"
#include "ossapi/signed_request.h"

namespace uploadbroker::ossapi {
namespace {

// Collects the elements of a ListBucketResult as expat reports them: the
// text of each element directly under the root or under a <Contents>.
// Nesting beyond that (Owner, RestoreInfo...) is skipped.
struct Collector {
  std::vector<std::string> path;  // open elements, root first
  std::string text;               // text of the innermost open element
  std::string root;
  std::string is_truncated, next_token, encoding;
  std::vector<std::map<std::string, std::string>> contents;
  std::string error;

  void Start(const char* name) {
    if (path.empty()) root = name;
    if (path.size() == 1 && std::string_view(name) == "Contents") contents.emplace_back();
    path.emplace_back(name);
    text.clear();
  }
  void End() {
    const std::string& name = path.back();
    if (path.size() == 2) {
      if (name == "IsTruncated") is_truncated = text;
      if (name == "NextContinuationToken") next_token = text;
      if (name == "EncodingType") encoding = text;
    } else if (path.size() == 3 && path[1] == "Contents") {
      contents.back()[name] = text;
    }
    path.pop_back();
    text.clear();
  }
};

void XMLCALL OnStart(void* data, const XML_Char* name, const XML_Char**) {
  static_cast<Collector*>(data)->Start(name);
}
void XMLCALL OnEnd(void* data, const XML_Char*) { static_cast<Collector*>(data)->End(); }
void XMLCALL OnText(void* data, const XML_Char* s, int len) {
  auto* c = static_cast<Collector*>(data);
  if (c->text.size() + static_cast<size_t>(len) <= 64 * 1024) c->text.append(s, len);
}

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
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                       XML_ParserFree);
  if (!parser) return absl::InternalError("XML_ParserCreate failed");
  Collector c;
  XML_SetUserData(parser.get(), &c);
  XML_SetElementHandler(parser.get(), OnStart, OnEnd);
  XML_SetCharacterDataHandler(parser.get(), OnText);
  if (XML_Parse(parser.get(), xml.data(), static_cast<int>(xml.size()), /*isFinal=*/1) !=
      XML_STATUS_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("ListObjectsV2 answer is not well-formed XML: ",
                     XML_ErrorString(XML_GetErrorCode(parser.get())), " at line ",
                     XML_GetCurrentLineNumber(parser.get())));
  }
  if (c.root != "ListBucketResult") {
    return absl::InvalidArgumentError(
        absl::StrCat("ListObjectsV2 answer is <", c.root, ">, not <ListBucketResult>"));
  }
  ListPage page;
  if (c.is_truncated != "true" && c.is_truncated != "false") {
    return absl::InvalidArgumentError("ListObjectsV2 answer: IsTruncated is not true or false");
  }
  page.truncated = c.is_truncated == "true";
  page.next_token = c.next_token;
  if (page.truncated && page.next_token.empty()) {
    return absl::InvalidArgumentError(
        "ListObjectsV2 answer: truncated without a NextContinuationToken");
  }
  for (auto& fields : c.contents) {
    ListedObject o;
    if (c.encoding == "url") {
      absl::StatusOr<std::string> key = common::PercentDecode(fields["Key"], false);
      if (!key.ok()) {
        return absl::InvalidArgumentError("ListObjectsV2 answer: a Key is not URL-encoded");
      }
      o.key = *std::move(key);
    } else {
      o.key = fields["Key"];
    }
    if (o.key.empty()) {
      return absl::InvalidArgumentError("ListObjectsV2 answer: a Contents has no Key");
    }
    UB_ASSIGN_OR_RETURN(o.last_modified, ParseIso8601(fields["LastModified"]));
    if (!absl::SimpleAtoi(fields["Size"], &o.size) || o.size < 0) {
      return absl::InvalidArgumentError("ListObjectsV2 answer: a Size is not a byte count");
    }
    o.etag = fields["ETag"];
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
