// ObjectLister: ListObjectsV2 (GET /?list-type=2) on a configured bucket,
// sent with SendSigned (ossapi/signed_request.h), keys URL-encoded on the
// wire (encoding-type=url) and the XML answer read with ParseXml (ossapi/xml.h).
//
// The reconciler uses it to settle prefix authorizations: only the uploader
// knew the full key, so the broker looks for what was written under the
// prefix. Listings are bounded: at most `max_pages` pages of `page_size`
// keys per search.
//
// Thread-safe; each page blocks for at most about `timeout`. Errors: those
// of SendSigned; Unavailable for an answer that does not parse.
#ifndef UPLOADBROKER_OSSAPI_LIST_OBJECTS_H_
#define UPLOADBROKER_OSSAPI_LIST_OBJECTS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"

namespace uploadbroker::ossapi {

// One <Contents> entry.
struct ListedObject {
  std::string key;  // decoded
  absl::Time last_modified;
  int64_t size = 0;
  std::string etag;  // as listed (quoted)
};

// One page of a listing.
struct ListPage {
  std::vector<ListedObject> objects;  // in key order
  bool truncated = false;
  std::string next_token;  // NextContinuationToken when truncated
};

// Parses a ListBucketResult document. Keys are URL-decoded when the
// document says <EncodingType>url</EncodingType>. InvalidArgument naming
// what is wrong for anything else than a well-formed ListBucketResult.
absl::StatusOr<ListPage> ParseListObjectsV2(absl::string_view xml);

class ObjectLister {
 public:
  struct Options {
    int page_size = 1000;  // max-keys, 1 to 1,000
    int max_pages = 10;    // pages read per FindFirst
    absl::Duration timeout = absl::Seconds(10);
  };
  // Neither is owned; both must outlive the lister.
  ObjectLister(credentials::CredentialProvider& creds, const common::Clock& clock,
               Options options)
      : creds_(creds), clock_(clock), options_(options) {}

  // One page of keys starting with `prefix`, after `continuation_token`
  // (empty: from the start).
  absl::StatusOr<ListPage> List(const config::Bucket& bucket, const std::string& prefix,
                                const std::string& continuation_token);

  // The first object (in key order) under `prefix` for which `match` holds,
  // or nullopt when the whole prefix was read and none did.
  // ResourceExhausted when max_pages pages were read without an answer.
  absl::StatusOr<std::optional<ListedObject>> FindFirst(
      const config::Bucket& bucket, const std::string& prefix,
      const std::function<bool(const ListedObject&)>& match);

 private:
  credentials::CredentialProvider& creds_;
  const common::Clock& clock_;
  const Options options_;
};

}  // namespace uploadbroker::ossapi

#endif  // UPLOADBROKER_OSSAPI_LIST_OBJECTS_H_
