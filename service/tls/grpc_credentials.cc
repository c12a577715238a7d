#include "tls/grpc_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tls/pem_files.h"

namespace uploadbroker::tls {
namespace {

absl::Status WithSource(const config::Config& cfg, const absl::Status& st) {
  if (st.ok()) return st;
  return absl::Status(st.code(), absl::StrCat(cfg.source, ": ", st.message()));
}

}  // namespace

absl::StatusOr<GrpcServerSecurity> MakeGrpcServerSecurity(const config::Config& cfg) {
  const config::GrpcTls& t = cfg.grpc_tls;
  if (t.cert_file.empty()) return GrpcServerSecurity{grpc::InsecureServerCredentials(), "plaintext"};
  absl::Status st = CheckCertAndKey("tls.grpc", t.cert_file, t.key_file);
  if (st.ok() && !t.client_ca_file.empty()) st = CheckCaBundle("tls.grpc.client_ca_file", t.client_ca_file);
  if (!st.ok()) return WithSource(cfg, st);

  const auto interval = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(cfg.tls_reload_interval)));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      t.key_file, t.cert_file, t.client_ca_file, interval);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  GrpcServerSecurity out;
  if (t.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    out.description = "TLS";
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(t.require_client_cert
                                      ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    out.description = t.require_client_cert ? "TLS, client certificates required"
                                            : "TLS, client certificates optional";
  }
  out.credentials = grpc::experimental::TlsServerCredentials(options);
  if (out.credentials == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(cfg.source, ": tls.grpc: gRPC refused the TLS settings"));
  }
  return out;
}

std::vector<std::string> PeerCertificateUris(const grpc::AuthContext& context) {
  std::vector<std::string> uris;
  // Only a verified certificate sets these properties: the server asks for
  // client certificates only in the *_AND_VERIFY modes above.
  if (!context.IsPeerAuthenticated()) return uris;
  for (const grpc::string_ref& v : context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  return uris;
}

}  // namespace uploadbroker::tls
