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
  // What a killed simulator left: half-received bodies, unreferenced data
  // files, and the parts of multipart uploads (whose table was in memory).
  ObjectStore(options.data_dir).RemoveLeftovers();
  std::filesystem::remove_all(options.data_dir + "/.uploads", ec);
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
  http_options.stream_body = [self](const http::Request& head) { return self->StreamBody(head); };
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

std::optional<OssError> Simulator::ParseTarget(const http::Request& req, std::string* bucket,
                                               std::string* key) const {
  absl::StatusOr<std::string> path = common::PercentDecode(req.path_raw, false);
  if (!path.ok() || !absl::StartsWith(*path, "/")) return InvalidArgument("Malformed request path.");
  *bucket = VirtualHostBucket(req.Header("Host"), options_.vhost_domain);
  if (!bucket->empty()) {
    *key = path->substr(1);
  } else {
    std::pair<std::string, std::string> bk =
        absl::StrSplit(absl::string_view(*path).substr(1), absl::MaxSplits('/', 1));
    *bucket = bk.first;
    *key = bk.second;
  }
  if (!common::IsValidBucketName(*bucket)) {
    return OssError{400, "InvalidBucketName", "The specified bucket is not valid."};
  }
  if (key->size() > common::kMaxObjectKeyBytes) {
    return InvalidArgument("The object key is too long.");
  }
  return std::nullopt;
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
  std::string bucket;
  std::string key;
  if (auto e = ParseTarget(req, &bucket, &key)) return Error(*e, request_id);
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
