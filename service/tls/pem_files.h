// PEM file checks for the broker's TLS settings, run once at startup so a
// missing, unreadable or mismatched file stops the broker with the config
// field that names it, rather than a handshake failure later. Pure
// functions over OpenSSL; any thread.
//
// Errors are InvalidArgument "<field>: <reason>" (the caller puts the config
// source first); file contents are never echoed.
#ifndef UPLOADBROKER_TLS_PEM_FILES_H_
#define UPLOADBROKER_TLS_PEM_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::tls {

// The file's bytes; "<field>: cannot read '<path>': <errno text>" or
// "<field>: '<path>' is empty" otherwise.
absl::StatusOr<std::string> ReadPemFile(absl::string_view field, const std::string& path);

// `cert_file` holds at least one certificate (leaf first), `key_file` a
// private key, and the key belongs to the leaf. `section` is e.g.
// "tls.grpc"; errors name "<section>.cert_file" or "<section>.key_file".
absl::Status CheckCertAndKey(absl::string_view section, const std::string& cert_file,
                             const std::string& key_file);

// `path` holds at least one CA certificate.
absl::Status CheckCaBundle(absl::string_view field, const std::string& path);

}  // namespace uploadbroker::tls

#endif  // UPLOADBROKER_TLS_PEM_FILES_H_
