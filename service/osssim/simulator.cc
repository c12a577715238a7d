#include "osssim/simulator.h"

#include <boost/asio/post.hpp>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/oss_names.h"
#include "osssim/multipart.h"
#include "osssim/request_auth.h"

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

http::Response Error(const OssError& e, const std::string& request_id) {
  return ErrorResponse(e, request_id);
}

// OSS answers a failed HEAD with its status and headers only: no error
// document (Content-Length: 0), as a HEAD has no body to carry one.
http::Response AsOssAnswers(const http::Request& req, http::Response r) {
  if (req.method == "HEAD" && r.status >= 300) {
    r.body.clear();
    r.content_type.clear();
  }
  return r;
}

std::string HostIp(const std::string& peer) {
  size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

// Virtual-hosted bucket from Host "<bucket>.<domain>[:port]", or "".
std::string VirtualHostBucket(std::string host, const std::string& domain) {
  host = absl::AsciiStrToLower(host.substr(0, host.find(':')));
  std::string suffix = "." + absl::AsciiStrToLower(domain);
  if (domain.empty() || !absl::EndsWith(host, suffix)) return "";
  return host.substr(0, host.size() - suffix.size());
}

}  // namespace

std::optional<OssError> Simulator::ParseObjectAcl(const std::string& value, std::string* acl) {
  *acl = value.empty() ? "default" : value;
  for (const char* known : {"default", "private", "public-read", "public-read-write"}) {
    if (*acl == known) return std::nullopt;
  }
  return InvalidArgument("The specified object ACL is not valid: x-oss-object-acl must be "
                         "private, public-read, public-read-write or default.");
}

std::optional<OssError> Simulator::RequestCallback(const http::Request& req,
                                                   const QueryParams& query,
                                                   std::optional<CallbackParam>& callback,
                                                   std::map<std::string, std::string>& custom) {
  std::string header_cb = req.Header("x-oss-callback");
  std::string header_var = req.Header("x-oss-callback-var");
  std::optional<std::string> query_cb = QueryParam(query, "callback");
  std::optional<std::string> query_var = QueryParam(query, "callback-var");
  if ((!header_cb.empty() && query_cb) || (!header_var.empty() && query_var)) {
    return InvalidArgument("The callback parameter is sent both in the URL and as a header.");
  }
  std::string cb = query_cb ? *query_cb : header_cb;
  std::string var = query_var ? *query_var : header_var;
  if (cb.empty()) return std::nullopt;
  absl::StatusOr<CallbackParam> p = ParseCallbackParam(cb);
  if (!p.ok()) return InvalidArgument(std::string(p.status().message()));
  callback = *std::move(p);
  if (!var.empty()) {
    auto vars = ParseCallbackVar(var);
    if (!vars.ok()) return InvalidArgument(std::string(vars.status().message()));
    custom = *std::move(vars);
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<Simulator>> Simulator::Create(SimulatorOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir is required");
  if (options.credentials.access_key_id.empty() || options.credentials.access_key_secret.empty()) {
    return absl::InvalidArgumentError("an AccessKey id and secret are required");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("data_dir: ", ec.message()));
  std::optional<SimKey> key;
  if (options.key_file.empty()) {
    key.emplace(SimKey::Generate());
  } else {
    absl::StatusOr<SimKey> loaded = SimKey::LoadOrCreate(options.key_file);
    if (!loaded.ok()) return loaded.status();
    key.emplace(*std::move(loaded));
  }
  std::unique_ptr<Simulator> sim(new Simulator(std::move(options), std::move(*key)));
  http::ServerOptions http_options;
  http_options.listen = sim->options_.listen;
  http_options.max_body_bytes = sim->options_.max_body_bytes;
  http_options.max_header_bytes = 64 * 1024;
  http_options.read_timeout = absl::Minutes(10);
  http_options.write_timeout = absl::Minutes(1);
  Simulator* self = sim.get();
  auto server = http::Server::Create(http_options, [self](http::Request req,
                                                          http::Responder respond) {
    boost::asio::post(self->pool_, [self, req = std::move(req), respond = std::move(respond)] {
      respond(AsOssAnswers(req, self->Route(req)));
    });
  });
  if (!server.ok()) return server.status();
  sim->server_ = *std::move(server);
  return sim;
}

Simulator::Simulator(SimulatorOptions options, SimKey key)
    : options_(std::move(options)),
      key_(std::move(key)),
      store_(options_.data_dir),
      uploads_(options_.data_dir, store_),
      pool_(static_cast<size_t>(std::max(1, options_.workers))) {}

Simulator::~Simulator() { Shutdown(); }

void Simulator::Shutdown() {
  if (server_ != nullptr) server_->Shutdown();
  pool_.join();
}

std::string Simulator::public_key_url() const {
  return absl::StrCat("http://127.0.0.1:", port(), "/sim_pub_key.pem");
}

http::Response Simulator::Route(const http::Request& req) {
  std::string request_id = absl::AsciiStrToUpper(common::RandomHex(12));
  if (req.method == "GET" && req.path_raw == "/sim_pub_key.pem") {
    http::Response r;
    r.content_type = "application/x-pem-file";
    r.body = key_.PublicPem();
    return r;
  }
  absl::StatusOr<std::string> path = common::PercentDecode(req.path_raw, false);
  if (!path.ok() || !absl::StartsWith(*path, "/")) {
    return Error(InvalidArgument("Malformed request path."), request_id);
  }
  std::string bucket = VirtualHostBucket(req.Header("Host"), options_.vhost_domain);
  std::string key;
  if (!bucket.empty()) {
    key = path->substr(1);
  } else {
    std::pair<std::string, std::string> bk =
        absl::StrSplit(absl::string_view(*path).substr(1), absl::MaxSplits('/', 1));
    bucket = bk.first;
    key = bk.second;
  }
  if (!common::IsValidBucketName(bucket)) {
    return Error({400, "InvalidBucketName", "The specified bucket is not valid."}, request_id);
  }
  if (key.size() > common::kMaxObjectKeyBytes) {
    return Error(InvalidArgument("The object key is too long."), request_id);
  }
  if (req.method == "POST" && key.empty()) return PostObject(req, bucket, request_id);
  if (req.method == "GET" && key.empty()) {
    QueryParams query = ParseQuery(req.query_raw);
    if (QueryParam(query, "list-type") == "2") return ListObjects(req, bucket, query, request_id);
  }
  if (!key.empty()) {
    QueryParams query = ParseQuery(req.query_raw);
    bool upload_id = QueryParam(query, "uploadId").has_value();
    if (req.method == "POST" && QueryParam(query, "uploads")) {
      return InitiateUpload(req, bucket, key, query, request_id);
    }
    if (req.method == "PUT" && upload_id) return UploadPart(req, bucket, key, query, request_id);
    if (req.method == "GET" && upload_id) return ListParts(req, bucket, key, query, request_id);
    if (req.method == "POST" && upload_id) {
      return CompleteUpload(req, bucket, key, query, request_id);
    }
    if (req.method == "DELETE" && upload_id) return AbortUpload(req, bucket, key, query, request_id);
  }
  if (req.method == "PUT" && !key.empty()) return PutObject(req, bucket, key, request_id);
  if (req.method == "GET" && !key.empty() && QueryParam(ParseQuery(req.query_raw), "acl")) {
    return GetObjectAcl(req, bucket, key, request_id);
  }
  if ((req.method == "HEAD" || req.method == "GET") && !key.empty()) {
    return ReadObject(req, bucket, key, request_id);
  }
  return Error({405, "MethodNotAllowed", "The specified method is not allowed against this resource."},
               request_id);
}

http::Response Simulator::PostObject(const http::Request& req, const std::string& bucket,
                                     const std::string& request_id) {
  absl::StatusOr<std::vector<FormPart>> parts = ParseFormData(req.Header("Content-Type"), req.body);
  if (!parts.ok()) {
    return Error({400, "MalformedPOSTRequest",
                  absl::StrCat("The body of your POST request is not well-formed "
                               "multipart/form-data. ", parts.status().message())},
                 request_id);
  }
  if (!absl::EqualsIgnoreCase(parts->back().name, "file")) {
    return Error(InvalidArgument("The file field must be the last form field."), request_id);
  }
  const FormPart& file = parts->back();
  FormFields fields;
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    std::string name = absl::AsciiStrToLower((*parts)[i].name);
    if (name == "file") return Error(InvalidArgument("Only one file per request."), request_id);
    fields.emplace(name, (*parts)[i].value);
  }
  absl::Time now = absl::Now();
  if (auto e = CheckPostSignature(fields, options_.credentials, now)) return Error(*e, request_id);
  std::string key = fields.count("key") ? fields["key"] : "";
  if (key.empty()) return Error(InvalidArgument("The key form field is missing."), request_id);
  if (key.size() > common::kMaxObjectKeyBytes) return Error(InvalidArgument("The key is too long."), request_id);
  if (auto e = CheckPostPolicy(fields, bucket, static_cast<int64_t>(file.value.size()), now)) {
    return Error(*e, request_id);
  }
  bool forbid_overwrite = false;
  if (auto e = ParseForbidOverwrite(fields.count("x-oss-forbid-overwrite") ? fields["x-oss-forbid-overwrite"] : "",
                                    &forbid_overwrite)) {
    return Error(*e, request_id);
  }
  std::string acl;
  if (auto e = ParseObjectAcl(fields.count("x-oss-object-acl") ? fields["x-oss-object-acl"] : "",
                              &acl)) {
    return Error(*e, request_id);
  }
  std::optional<CallbackParam> callback;
  std::map<std::string, std::string> custom;
  std::map<std::string, std::string> metadata;
  for (const auto& [name, value] : fields) {
    if (absl::StartsWith(name, "x:")) custom[name] = value;
    if (absl::StartsWith(name, "x-oss-meta-")) metadata[name.substr(11)] = value;
  }
  if (fields.count("callback")) {
    absl::StatusOr<CallbackParam> p = ParseCallbackParam(fields["callback"]);
    if (!p.ok()) return Error(InvalidArgument(std::string(p.status().message())), request_id);
    callback = *std::move(p);
  }
  std::string content_type = fields.count("x-oss-content-type") ? fields["x-oss-content-type"]
                             : fields.count("content-type")     ? fields["content-type"]
                             : !file.content_type.empty()       ? file.content_type
                                                                : "application/octet-stream";
  absl::StatusOr<ObjectInfo> info =
      store_.Put(bucket, key, file.value, content_type, std::move(metadata), forbid_overwrite, acl);
  if (!info.ok()) return Error(StoreError(info.status()), request_id);

  http::Response plain;
  plain.headers.emplace_back("ETag", info->etag);
  plain.headers.emplace_back("x-oss-request-id", request_id);
  std::string status = fields.count("success_action_status") ? fields["success_action_status"] : "";
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
    return Error(*e, request_id);
  }
  bool forbid_overwrite = false;
  if (auto e = ParseForbidOverwrite(req.Header("x-oss-forbid-overwrite"), &forbid_overwrite)) {
    return Error(*e, request_id);
  }
  std::string acl;
  if (auto e = ParseObjectAcl(req.Header("x-oss-object-acl"), &acl)) return Error(*e, request_id);
  std::optional<CallbackParam> callback;
  std::map<std::string, std::string> custom;
  if (auto e = RequestCallback(req, query, callback, custom)) return Error(*e, request_id);
  std::map<std::string, std::string> metadata;
  for (const auto& [name, value] : req.headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (absl::StartsWith(lower, "x-oss-meta-")) metadata[lower.substr(11)] = value;
  }
  std::string content_type = req.Header("Content-Type");
  if (content_type.empty()) content_type = "application/octet-stream";
  absl::StatusOr<ObjectInfo> info =
      store_.Put(bucket, key, req.body, content_type, metadata, forbid_overwrite, acl);
  if (!info.ok()) return Error(StoreError(info.status()), request_id);
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
    return Error(*e, request_id);
  }
  std::optional<ObjectInfo> info = store_.Head(bucket, key);
  std::optional<std::string> data = store_.Read(bucket, key);
  if (!info || !data) {
    return Error({404, "NoSuchKey", "The specified key does not exist."}, request_id);
  }
  http::Response r;
  r.content_type = info->content_type;
  r.body = *std::move(data);  // HEAD: the server sends only its length
  r.headers.emplace_back("ETag", info->etag);
  r.headers.emplace_back("x-oss-request-id", request_id);
  r.headers.emplace_back("x-oss-hash-crc64ecma", info->crc64);
  r.headers.emplace_back("Content-MD5", info->content_md5);
  r.headers.emplace_back("Last-Modified", absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                                           info->last_modified, absl::UTCTimeZone()));
  for (const auto& [k, v] : info->metadata) r.headers.emplace_back("x-oss-meta-" + k, v);
  return r;
}

http::Response Simulator::Finish(const std::optional<CallbackParam>& callback,
                                 const std::map<std::string, std::string>& custom_vars,
                                 const ObjectInfo& info, const std::string& bucket,
                                 const std::string& key, const std::string& operation,
                                 const http::Request& req, const std::string& request_id,
                                 http::Response no_callback_answer) {
  if (!callback) return no_callback_answer;
  std::map<std::string, std::string> system = {
      {"bucket", bucket},
      {"object", key},
      {"etag", info.etag.size() >= 2 ? info.etag.substr(1, info.etag.size() - 2) : info.etag},
      {"size", absl::StrCat(info.size)},
      {"mimeType", info.content_type},
      {"imageInfo.height", ""},
      {"imageInfo.width", ""},
      {"imageInfo.format", ""},
      {"crc64", info.crc64},
      {"contentMd5", info.content_md5},
      {"vpcId", ""},
      {"clientIp", HostIp(req.peer)},
      {"reqId", request_id},
      {"operation", operation},
  };
  absl::StatusOr<std::string> body = RenderCallbackBody(*callback, system, custom_vars);
  CallbackOutcome outcome;
  if (body.ok()) {
    CallbackRequestInfo call{public_key_url(), request_id, bucket, options_.callback_timeout,
                             options_.callback_ca_file};
    outcome = SendCallback(*callback, *body, key_, call);
  } else {
    outcome.message = std::string(body.status().message());
  }
  if (outcome.ok) {
    http::Response r;
    r.status = 200;
    r.content_type = "application/json";
    r.body = std::move(outcome.body);
    r.headers = std::move(no_callback_answer.headers);
    return r;
  }
  http::Response r = Error({203, "CallbackFailed", outcome.message}, request_id);
  r.headers = std::move(no_callback_answer.headers);
  return r;
}

}  // namespace uploadbroker::osssim
