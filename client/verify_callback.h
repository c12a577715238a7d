// `ubctl verify-callback`: explains why an OSS callback does or does not
// verify, using the broker's own Verifier. Exit 0 and "valid" when it
// verifies; exit 1 naming the failing check and printing the exact string
// that was verified (escaped) otherwise; 2 on usage errors.
#ifndef UPLOADBROKER_CLIENT_VERIFY_CALLBACK_H_
#define UPLOADBROKER_CLIENT_VERIFY_CALLBACK_H_

#include <ostream>
#include <string>

namespace uploadbroker::client {

struct VerifyCallbackArgs {
  std::string path_and_query;  // as OSS requested it, e.g. /oss/callback?x=1
  std::string callback_path;   // path to verify against (default: from path_and_query)
  std::string authorization;   // Authorization header value
  std::string pub_key_url;     // x-oss-pub-key-url header value (base64), or the plain URL
  std::string signature_version;
  std::string body_file;
  std::string request_file;    // raw captured HTTP request (replaces the above)
  std::string trusted_key_file;  // development keys (simulator)
  std::string trusted_key_url;
};

int VerifyCallback(const VerifyCallbackArgs& args, std::ostream& out, std::ostream& err);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_VERIFY_CALLBACK_H_
