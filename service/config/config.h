// Config: the broker's whole configuration, loaded from one YAML file plus
// environment overrides. A loaded Config is immutable and may be shared
// across threads. Secrets are never stored here: only where to read them
// (see credentials/ and auth/).
#ifndef UPLOADBROKER_CONFIG_CONFIG_H_
#define UPLOADBROKER_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/oss_names.h"

namespace uploadbroker::config {

struct Bucket {
  std::string name;
  std::string region;    // standard form, e.g. "cn-hangzhou" ("oss-" prefix stripped)
  std::string endpoint;  // e.g. "https://oss-cn-hangzhou.aliyuncs.com"
  // Host the broker sends its own OSS requests (HeadObject) to:
  // "<name>.<endpoint host>", or with path_style the endpoint host.
  std::string api_host;
  // Host the uploader talks to; default "<name>.<endpoint host>".
  // With path_style, "<endpoint host>/<name>" is used instead (simulator).
  std::string public_host;
  bool path_style = false;
  std::string scheme = "https";  // taken from the endpoint
};

// Where the OSS signing credential comes from. Exactly one of the two forms.
struct CredentialSource {
  // Static AccessKey pair: files holding the id and the secret.
  std::string access_key_id_file;
  std::string access_key_secret_file;
  // STS: a JSON file with AccessKeyId, AccessKeySecret, SecurityToken and
  // Expiration (the shape STS AssumeRole returns). Re-read when it changes.
  std::string sts_file;
};

struct Caller {
  std::string name;
  std::string api_key_sha256;  // lowercase hex SHA-256 of the API key
  std::vector<std::string> buckets;
  // Each non-empty, ending with '/', a safe key (common::CheckObjectKey);
  // none: any key.
  std::vector<std::string> key_prefixes;
  // Largest object in bytes, up to common::kMaxObjectSize. POST and PUT
  // authorizations are capped at common::kMaxSingleUploadSize besides;
  // larger objects take CreateMultipartUpload.
  int64_t max_size = common::kMaxSingleUploadSize;
  std::vector<std::string> content_types;  // empty: any
  absl::Duration max_ttl = absl::Hours(1);
};

struct Config {
  std::string source;  // file the config was read from, for messages
  // `development: true` allows what only a local simulator needs: http://
  // bucket endpoints, and a trusted callback key named by an http:// URL or
  // fetched from its URL. Without it a trusted key must come from a file
  // under an https:// name. The broker warns at startup when it is on.
  bool development = false;
  std::string grpc_listen = "127.0.0.1:50051";
  std::string http_listen = "127.0.0.1:8080";
  // Public URL OSS posts callbacks to; its path is the callback route and
  // the path used to verify signatures.
  std::string callback_url;
  // Extra constant fields added to the callback answer OSS relays.
  std::map<std::string, std::string> callback_response_extra;
  // Trust a non-OSS callback key (simulator/tests). Empty: OSS's pinned key only.
  std::string trusted_key_file;
  std::string trusted_key_url;
  // Confirm every callback's object with a signed HeadObject before
  // completing on it (ingest/confirmer.h). On unless the file says
  // `callback.confirm_completions: false`; the broker then warns at startup
  // that forged completions are possible.
  bool confirm_completions = true;
  std::string ledger_path = "upload-broker.db";
  // PostgreSQL ledger (several brokers share it): a file holding the libpq
  // connection string or URI. Empty: the embedded SQLite ledger at
  // ledger_path.
  std::string postgres_dsn_file;
  // Event retention: keep at most this many events and/or events younger
  // than this (0 = no limit).
  int64_t retain_events = 0;
  absl::Duration retain_age = absl::ZeroDuration();
  // Intents settled (completed or expired) longer ago than this are deleted
  // (0 = kept forever).
  absl::Duration retain_settled = absl::ZeroDuration();
  absl::Duration default_ttl = absl::Minutes(15);
  // Reconciler: every `reconcile_interval`, intents still PENDING
  // `reconcile_grace` after they expired are checked with HeadObject.
  bool reconcile = true;
  absl::Duration reconcile_interval = absl::Minutes(1);
  absl::Duration reconcile_grace = absl::Hours(1);
  CredentialSource credentials;
  std::vector<Bucket> buckets;
  std::vector<Caller> callers;

  const Bucket* FindBucket(const std::string& name) const;
};

// Parses YAML text. `source` names the file in error messages. Errors are
// InvalidArgument "<source>: <field>: <reason>". Strict: an unknown or
// repeated key in any mapping is an error naming its path.
absl::StatusOr<Config> ParseConfig(const std::string& yaml_text,
                                   const std::string& source);

// Reads the file, then applies environment overrides:
//   UB_GRPC_LISTEN, UB_HTTP_LISTEN, UB_CALLBACK_URL, UB_LEDGER_PATH,
//   UB_TRUSTED_KEY_FILE, UB_TRUSTED_KEY_URL, UB_POSTGRES_DSN_FILE.
absl::StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace uploadbroker::config

#endif  // UPLOADBROKER_CONFIG_CONFIG_H_
