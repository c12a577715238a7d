#include "config/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace uploadbroker::config::internal {
namespace {

constexpr absl::string_view kTlsKeys[] = {"grpc", "http", "reload_interval",
                                          "allow_plaintext_grpc"};
constexpr absl::string_view kGrpcTlsKeys[] = {"cert_file", "key_file", "client_ca_file",
                                              "require_client_cert"};
constexpr absl::string_view kHttpTlsKeys[] = {"cert_file", "key_file"};

// cert_file and key_file come as a pair.
absl::Status CheckPair(const Reader& r, absl::string_view section, const std::string& cert,
                       const std::string& key) {
  if (cert.empty() && !key.empty()) {
    return r.Fail(absl::StrCat(section, ".cert_file"), "required with key_file");
  }
  if (!cert.empty() && key.empty()) {
    return r.Fail(absl::StrCat(section, ".key_file"), "required with cert_file");
  }
  return absl::OkStatus();
}

absl::Status ParseGrpcTls(const Reader& r, const YAML::Node& n, GrpcTls* out) {
  UB_RETURN_IF_ERROR(r.Map(n, "tls.grpc", kGrpcTlsKeys));
  if (!n) return absl::OkStatus();
  UB_RETURN_IF_ERROR(r.String(n["cert_file"], "tls.grpc.cert_file", &out->cert_file));
  UB_RETURN_IF_ERROR(r.String(n["key_file"], "tls.grpc.key_file", &out->key_file));
  UB_RETURN_IF_ERROR(r.String(n["client_ca_file"], "tls.grpc.client_ca_file", &out->client_ca_file));
  UB_RETURN_IF_ERROR(
      r.Bool(n["require_client_cert"], "tls.grpc.require_client_cert", &out->require_client_cert));
  UB_RETURN_IF_ERROR(CheckPair(r, "tls.grpc", out->cert_file, out->key_file));
  if (!out->client_ca_file.empty() && out->cert_file.empty()) {
    return r.Fail("tls.grpc.client_ca_file", "needs cert_file and key_file (mutual TLS is TLS)");
  }
  if (out->require_client_cert && out->client_ca_file.empty()) {
    return r.Fail("tls.grpc.require_client_cert",
                  "needs client_ca_file (the CA client certificates are verified against)");
  }
  return absl::OkStatus();
}

absl::Status ParseHttpTls(const Reader& r, const YAML::Node& n, HttpTls* out) {
  UB_RETURN_IF_ERROR(r.Map(n, "tls.http", kHttpTlsKeys));
  if (!n) return absl::OkStatus();
  UB_RETURN_IF_ERROR(r.String(n["cert_file"], "tls.http.cert_file", &out->cert_file));
  UB_RETURN_IF_ERROR(r.String(n["key_file"], "tls.http.key_file", &out->key_file));
  return CheckPair(r, "tls.http", out->cert_file, out->key_file);
}

// The host part of "host:port", "[v6]:port"; the whole text otherwise.
absl::string_view ListenHost(absl::string_view listen) {
  if (absl::StartsWith(listen, "[")) {
    size_t close = listen.find(']');
    return close == absl::string_view::npos ? listen : listen.substr(1, close - 1);
  }
  size_t colon = listen.rfind(':');
  return colon == absl::string_view::npos ? listen : listen.substr(0, colon);
}

}  // namespace

bool IsLoopbackListen(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) return true;
  const std::string host(ListenHost(listen));
  // Only the literal name: any other name (127.attacker.example,
  // 127.0.0.1.nip.io) resolves to whatever its owner likes.
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;  // 127.0.0.0/8
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;  // ::1
    // ::ffff:127.x.y.z, the IPv4 loopback seen through a dual-stack socket.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status ParseTls(const Reader& r, const YAML::Node& tls, Config* cfg) {
  UB_RETURN_IF_ERROR(r.Map(tls, "tls", kTlsKeys));
  if (!tls) return absl::OkStatus();
  UB_RETURN_IF_ERROR(ParseGrpcTls(r, tls["grpc"], &cfg->grpc_tls));
  UB_RETURN_IF_ERROR(ParseHttpTls(r, tls["http"], &cfg->http_tls));
  UB_RETURN_IF_ERROR(r.Duration(tls["reload_interval"], "tls.reload_interval",
                                &cfg->tls_reload_interval));
  if (cfg->tls_reload_interval < absl::Seconds(1)) {
    return r.Fail("tls.reload_interval", "must be at least 1s");
  }
  return r.Bool(tls["allow_plaintext_grpc"], "tls.allow_plaintext_grpc",
                &cfg->allow_plaintext_grpc);
}

absl::Status ValidateTls(const Reader& r, const Config& cfg) {
  std::set<std::string> uris;
  for (size_t i = 0; i < cfg.callers.size(); ++i) {
    const std::string& uri = cfg.callers[i].client_cert_uri;
    if (uri.empty()) continue;
    const std::string field = absl::StrCat("callers[", i, "].client_cert_uri");
    if (cfg.grpc_tls.client_ca_file.empty()) {
      return r.Fail(field, "needs tls.grpc.client_ca_file (client certificates are verified "
                           "against it before their URI is trusted)");
    }
    if (!uris.insert(uri).second) return r.Fail(field, "same URI as another caller");
  }
  if (cfg.grpc_tls.cert_file.empty() && !cfg.allow_plaintext_grpc &&
      !IsLoopbackListen(cfg.grpc_listen)) {
    return r.Fail("listen.grpc",
                  absl::StrCat("'", cfg.grpc_listen, "' is not a loopback address: serving "
                               "plaintext gRPC there sends API keys and authorizations unencrypted; "
                               "set tls.grpc.cert_file and tls.grpc.key_file, or "
                               "tls.allow_plaintext_grpc: true when TLS is terminated in front "
                               "of the broker"));
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::config::internal
