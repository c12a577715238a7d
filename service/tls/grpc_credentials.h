// gRPC server credentials for the broker's API listener, from the config's
// `tls.grpc` section.
//
// With TLS, gRPC's FileWatcherCertificateProvider re-reads the certificate,
// key and client CA every Config::tls_reload_interval: new handshakes use
// the new files, established connections keep theirs. Replace the files
// atomically (a renamed directory or symlink, as Kubernetes does for a
// mounted Secret); a half-written pair is skipped until it is whole.
// With a client CA, client certificates are verified against it (and
// required when require_client_cert); the RPC layer then reads the verified
// certificate's URI SANs (PeerCertificateUris) to find the caller.
#ifndef UPLOADBROKER_TLS_GRPC_CREDENTIALS_H_
#define UPLOADBROKER_TLS_GRPC_CREDENTIALS_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config.h"

namespace uploadbroker::tls {

struct GrpcServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // For the startup log line: "plaintext", "TLS", "TLS, client certificates
  // optional" or "TLS, client certificates required".
  std::string description;
};

// Checks the files (errors "<source>: tls.grpc.<field>: <reason>") and
// builds TLS credentials; plaintext credentials when tls.grpc.cert_file is
// empty (config/ has already refused plaintext off loopback without
// tls.allow_plaintext_grpc).
absl::StatusOr<GrpcServerSecurity> MakeGrpcServerSecurity(const config::Config& cfg);

// The URI SANs of the client certificate of a call, when the connection is
// TLS and the client presented a certificate the server verified; empty
// otherwise (plaintext, or no certificate).
std::vector<std::string> PeerCertificateUris(const grpc::AuthContext& context);

}  // namespace uploadbroker::tls

#endif  // UPLOADBROKER_TLS_GRPC_CREDENTIALS_H_
