#include "client/verify_callback.h"

#include <boost/beast/http.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "callback/verifier.h"
#include "common/encoding.h"

namespace uploadbroker::client {
namespace {

namespace http = boost::beast::http;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// Fills path, headers and body from a raw HTTP request, parsed by Beast.
bool ParseRequest(const std::string& raw, VerifyCallbackArgs* a, std::string* body,
                  std::string* error) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(16 * 1024 * 1024);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(raw), ec);
  if (!ec && !parser.is_done() && used == raw.size()) parser.put_eof(ec);
  if (ec || !parser.is_done()) {
    *error = absl::StrCat("cannot parse the request file as HTTP: ",
                          ec ? ec.message() : "incomplete request");
    return false;
  }
  const auto& req = parser.get();
  a->path_and_query = std::string(req.target());
  auto header = [&](const char* name) {
    auto it = req.find(name);
    return it == req.end() ? std::string() : std::string(it->value());
  };
  a->authorization = header("authorization");
  a->pub_key_url = header("x-oss-pub-key-url");
  a->signature_version = header("x-oss-signature-version");
  *body = req.body();
  return true;
}

}  // namespace

int VerifyCallback(const VerifyCallbackArgs& in, std::ostream& out, std::ostream& err) {
  VerifyCallbackArgs a = in;
  std::string body;
  if (!a.request_file.empty()) {
    std::string raw, error;
    if (!ReadFile(a.request_file, &raw)) {
      err << "error: cannot read --request-file " << a.request_file << "\n";
      return 2;
    }
    if (!ParseRequest(raw, &a, &body, &error)) {
      err << "error: " << error << "\n";
      return 2;
    }
  } else if (!a.body_file.empty() && !ReadFile(a.body_file, &body)) {
    err << "error: cannot read --body-file " << a.body_file << "\n";
    return 2;
  }
  if (a.path_and_query.empty() || a.path_and_query[0] != '/') {
    err << "error: --path-and-query must start with '/' (or give --request-file)\n";
    return 2;
  }
  size_t q = a.path_and_query.find('?');
  std::string path = a.callback_path.empty() ? a.path_and_query.substr(0, q) : a.callback_path;
  std::string query = q == std::string::npos ? "" : a.path_and_query.substr(q + 1);
  // Accept the plain URL for convenience; the header carries it base64-encoded.
  if (absl::StartsWith(a.pub_key_url, "http://") || absl::StartsWith(a.pub_key_url, "https://")) {
    a.pub_key_url = common::Base64Encode(a.pub_key_url);
  }
  std::vector<callback::TrustedKey> extra;
  if (!a.trusted_key_file.empty()) {
    std::string pem;
    if (!ReadFile(a.trusted_key_file, &pem)) {
      err << "error: cannot read --trusted-key-file\n";
      return 2;
    }
    auto key = callback::PublicKey::FromPem(pem);
    if (!key.ok() || a.trusted_key_url.empty()) {
      err << "error: --trusted-key-file needs an RSA public key PEM and --trusted-key-url\n";
      return 2;
    }
    extra.push_back({a.trusted_key_url, *std::move(key)});
  }
  auto verifier = callback::Verifier::Create(path, std::move(extra));
  if (!verifier.ok()) {
    err << "error: " << verifier.status().message() << "\n";
    return 2;
  }
  callback::VerifyReport report =
      verifier->Explain(query, body, a.authorization, a.pub_key_url, a.signature_version);
  if (report.valid) {
    out << "valid\n";
    return 0;
  }
  out << "invalid: " << report.failed_check << "\n"
      << "string verified: \"" << callback::EscapeForDisplay(report.string_to_sign) << "\"\n";
  return 1;
}

}  // namespace uploadbroker::client
