// Internal to config/: the `tls` section and the rules tying it to the rest
// of the config (mutual-TLS callers, plaintext gRPC off loopback). Split
// from config.cc to keep each file about one thing. Same error shape as the
// rest: "<source>: <field>: <reason>".
#ifndef UPLOADBROKER_CONFIG_TLS_H_
#define UPLOADBROKER_CONFIG_TLS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "config/config.h"
#include "config/reader.h"
#include "yaml-cpp/yaml.h"

namespace uploadbroker::config::internal {

// Reads `tls` (absent: plaintext gRPC and HTTP) into cfg.
absl::Status ParseTls(const Reader& r, const YAML::Node& tls, Config* cfg);

// Cross-field rules, run on the file and again after environment overrides:
// a caller's client_cert_uri needs tls.grpc.client_ca_file; plaintext gRPC
// on an address other than loopback needs tls.allow_plaintext_grpc.
absl::Status ValidateTls(const Reader& r, const Config& cfg);

// True for listen addresses only this machine can reach: the literal name
// localhost, an IPv4 literal in 127.0.0.0/8, [::1] or [::ffff:127.x.y.z],
// unix: sockets. Host names are never resolved: any other name is not
// loopback (127.attacker.example, 127.0.0.1.nip.io).
bool IsLoopbackListen(absl::string_view listen);

}  // namespace uploadbroker::config::internal

#endif  // UPLOADBROKER_CONFIG_TLS_H_
