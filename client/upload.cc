#include "client/upload.h"

#include <curl/curl.h>

#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/broker_client.h"
#include "client/multipart_upload.h"
#include "client/upload_common.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client {
namespace {

using internal::FillMetadata;
using internal::Perform;
using internal::Report;

// The most one PutObject or PostObject carries (OSS's limit).
constexpr int64_t kMaxSingleRequest = int64_t{5} << 30;

// Both flavours stream the file from disk (libcurl reads it as it sends).
int UploadPost(BrokerClient& broker, const UploadArgs& args, const std::string& filename,
               std::ostream& out, std::ostream& err) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket(args.bucket);
  req.set_key(args.key);
  req.set_key_prefix(args.key_prefix);
  req.add_content_types(args.content_type);
  req.set_max_size(args.max_size);
  req.set_ttl_seconds(args.ttl_seconds);
  req.set_signature_version(args.v1 ? v1::SIGNATURE_VERSION_V1 : v1::SIGNATURE_VERSION_V4);
  req.set_allow_overwrite(args.allow_overwrite);
  if (!FillMetadata(args.metadata, req.mutable_metadata(), err)) return 2;
  auto policy = broker.CreatePostPolicy(req);
  if (!policy.ok()) {
    err << "error: the broker refused to issue a policy: " << policy.status().message() << "\n";
    return 1;
  }
  std::string key = policy->key_is_prefix() ? policy->key() + filename : policy->key();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  std::unique_ptr<curl_mime, decltype(&curl_mime_free)> mime(curl_mime_init(curl.get()),
                                                             &curl_mime_free);
  bool has_type = false;
  for (const v1::FormField& f : policy->fields()) {  // in the broker's order
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, f.name().c_str());
    const std::string& value = f.name() == "key" ? key : f.value();
    curl_mime_data(part, value.data(), value.size());
    has_type = has_type || absl::EqualsIgnoreCase(f.name(), "Content-Type");
  }
  if (!has_type) {
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, "Content-Type");
    curl_mime_data(part, args.content_type.data(), args.content_type.size());
  }
  curl_mimepart* file = curl_mime_addpart(mime.get());  // file last
  curl_mime_name(file, "file");
  if (curl_mime_filedata(file, args.file.c_str()) != CURLE_OK) {  // streamed from disk
    err << "error: cannot read " << args.file << "\n";
    return 2;
  }
  curl_mime_filename(file, filename.c_str());  // after filedata, which sets its own
  curl_mime_type(file, args.content_type.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_URL, policy->url().c_str());
  curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime.get());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
      curl_slist_append(nullptr, "Expect:"), &curl_slist_free_all);
  return Report(Perform(curl.get(), headers.get(), args, err), out, err);
}

int UploadPut(BrokerClient& broker, const UploadArgs& args, int64_t size,
              const std::string& filename, std::ostream& out, std::ostream& err) {
  v1::CreatePresignedPutRequest req;
  req.set_bucket(args.bucket);
  req.set_key(args.key.empty() ? args.key_prefix + filename : args.key);
  req.set_content_type(args.content_type);
  // The file's exact size, signed: the broker requires it below OSS's 5 GiB cap.
  req.set_content_length(size);
  req.set_ttl_seconds(args.ttl_seconds);
  req.set_signature_version(args.v1 ? v1::SIGNATURE_VERSION_V1 : v1::SIGNATURE_VERSION_V4);
  req.set_allow_overwrite(args.allow_overwrite);
  if (!FillMetadata(args.metadata, req.mutable_metadata(), err)) return 2;
  auto put = broker.CreatePresignedPut(req);
  if (!put.ok()) {
    err << "error: the broker refused to presign: " << put.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<FILE, decltype(&std::fclose)> data(std::fopen(args.file.c_str(), "rb"),
                                                     &std::fclose);
  if (data == nullptr) {
    err << "error: cannot read " << args.file << "\n";
    return 2;
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  bool has_type = false;
  for (const v1::HttpHeader& h : put->headers()) {  // exactly what was signed
    list = curl_slist_append(list, absl::StrCat(h.name(), ": ", h.value()).c_str());
    has_type = has_type || absl::EqualsIgnoreCase(h.name(), "Content-Type");
  }
  if (!has_type) list = curl_slist_append(list, "Content-Type:");  // send none
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, put->url().c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, put->method().empty() ? "PUT" : put->method().c_str());
  curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);  // body read from `data` as it is sent
  curl_easy_setopt(curl.get(), CURLOPT_READDATA, data.get());
  curl_easy_setopt(curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  return Report(Perform(curl.get(), headers.get(), args, err), out, err);
}

}  // namespace

int Upload(const UploadArgs& in, std::ostream& out, std::ostream& err) {
  UploadArgs args = in;
  if (args.file.empty() || args.bucket.empty()) {
    err << "error: usage: ubctl upload FILE --bucket B [--key K | --key-prefix P]\n";
    return 2;
  }
  if (args.key.empty() == args.key_prefix.empty()) {
    err << "error: give exactly one of --key and --key-prefix\n";
    return 2;
  }
  if (args.content_type.empty()) args.content_type = "application/octet-stream";
  struct stat st;
  if (stat(args.file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    err << "error: cannot read " << args.file << " (not a regular file?)\n";
    return 2;
  }
  const int64_t size = static_cast<int64_t>(st.st_size);
  std::string filename = args.file.substr(args.file.find_last_of('/') + 1);
  const bool too_big = size > kMaxSingleRequest;
  if (args.multipart || (args.multipart_threshold > 0 && size > args.multipart_threshold) ||
      too_big) {
    if (args.v1) {
      err << "error: multipart uploads are signed with V4 only\n";
      return 2;
    }
    if (!args.multipart) {
      err << "note: " << size << " bytes is above "
          << (args.multipart_threshold > 0 && size > args.multipart_threshold
                  ? absl::StrCat("--multipart-threshold (", args.multipart_threshold, ")")
                  : std::string("5 GiB, the most one PUT or POST carries"))
          << "; uploading in parts\n";
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    BrokerClient broker(args.target, args.credentials, args.api_key);
    return UploadMultipart(broker, args, size,
                           args.key.empty() ? args.key_prefix + filename : args.key, out, err);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  BrokerClient broker(args.target, args.credentials, args.api_key);
  return args.presigned ? UploadPut(broker, args, size, filename, out, err)
                        : UploadPost(broker, args, filename, out, err);
}

}  // namespace uploadbroker::client
