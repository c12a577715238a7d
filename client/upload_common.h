// Pieces every `ubctl upload` flavour shares: sending a request to OSS with
// libcurl and explaining OSS's answer in plain words. Internal to client/.
#ifndef UPLOADBROKER_CLIENT_UPLOAD_COMMON_H_
#define UPLOADBROKER_CLIENT_UPLOAD_COMMON_H_

#include <curl/curl.h>

#include <ostream>
#include <string>
#include <vector>

#include "client/upload.h"
#include "google/protobuf/map.h"

namespace uploadbroker::client::internal {

struct OssAnswer {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::string body;
};

// Sets the common options (headers, body collection, progress bar on `err`
// when args.progress) on `c`, then performs the request.
OssAnswer Perform(CURL* c, curl_slist* headers, const UploadArgs& args, std::ostream& err);

// The text of the root's first child element <tag> in the XML document `xml`
// (OSS's error document: Code, Message), read with ossapi::ParseXml; "" if
// absent or if `xml` is not well-formed XML.
std::string XmlField(const std::string& xml, const std::string& tag);

// Plain-words explanation of an OSS refusal.
std::string Explain(const OssAnswer& a);

// Prints what OSS relayed (the broker's callback answer) on `out`, or the
// explanation on `err`. Returns ubctl's exit code: 0 or 1.
int Report(const OssAnswer& a, std::ostream& out, std::ostream& err);

// Parses --meta k=v entries into `md`; false (after saying why) if one is bad.
bool FillMetadata(const std::vector<std::string>& kvs,
                  google::protobuf::Map<std::string, std::string>* md, std::ostream& err);

}  // namespace uploadbroker::client::internal

#endif  // UPLOADBROKER_CLIENT_UPLOAD_COMMON_H_
