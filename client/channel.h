// How the client reaches the broker: plaintext, TLS, or mutual TLS. One
// place turns ubctl's --tls/--ca/--cert/--cert-key into gRPC channel credentials
// for BrokerClient, Subscriber and the upload commands. Pure; any thread.
#ifndef UPLOADBROKER_CLIENT_CHANNEL_H_
#define UPLOADBROKER_CLIENT_CHANNEL_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace uploadbroker::client {

struct ChannelSecurity {
  // TLS to the broker. Setting any file below implies it.
  bool tls = false;
  std::string ca_file;    // PEM CAs to trust; empty: the system's roots
  std::string cert_file;  // client certificate chain (mutual TLS), with key_file
  std::string key_file;
};

// Plaintext credentials without TLS; TLS credentials otherwise.
// InvalidArgument naming the flag (--ca, --cert, --cert-key) when a file cannot
// be read or --cert and --key do not come together.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurity& security);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_CHANNEL_H_
