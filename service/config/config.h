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
#include "config/deliveries.h"

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
  // Mutual TLS: a client certificate (verified against
  // tls.grpc.client_ca_file) with this URI SAN, e.g.
  // "spiffe://example.org/photo-service", authenticates as this caller
  // without an API key. Empty: API key only. A caller has an API key, a
  // certificate URI, or both.
  std::string client_cert_uri;
  // Other callers whose uploads this one may read (GetUpload, ListUploads,
  // Subscribe, multipart calls, AbortUpload), or "*" for every upload. Its
  // own are always readable; buckets and key_prefixes still bound reads.
  std::vector<std::string> read_callers;
};

// TLS on the gRPC API (`tls.grpc`). Empty cert_file: plaintext. Files are
// re-read every Config::tls_reload_interval (see tls/).
struct GrpcTls {
  std::string cert_file;       // PEM certificate chain, leaf first
  std::string key_file;        // PEM private key of the leaf
  std::string client_ca_file;  // PEM CA bundle: client certificates are verified against it
  bool require_client_cert = false;  // refuse handshakes without one (needs client_ca_file)
};

// HTTPS on the callback listener (`tls.http`). Empty cert_file: plain HTTP
// (TLS terminated by an ingress).
struct HttpTls {
  std::string cert_file;
  std::string key_file;
};

// Bounds on what one RPC may ask for (`limits:`).
struct Limits {
  // Largest gRPC message the broker accepts; a larger one is
  // RESOURCE_EXHAUSTED before any handler runs. The default leaves room for
  // every legitimate request (the largest, SignUploadParts with 1,000 part
  // numbers or a request with every repeated field at its cap, is well
  // under 100 KiB).
  int64_t grpc_max_receive_bytes = 1 << 20;
  // Concurrent Subscribe streams per caller; the one over gets
  // RESOURCE_EXHAUSTED.
  int64_t subscribe_streams_per_caller = 16;
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
  // Admin listener (/metrics, /healthz, /readyz). Set: /metrics only there,
  // and http_listen serves callbacks and health only. Empty: /metrics is not
  // served at all (the callback port is public), unless
  // metrics_on_public_port says to serve it on http_listen.
  std::string admin_listen;
  // listen.metrics_on_public_port: the explicit switch for the old
  // behaviour; refused together with admin_listen.
  bool metrics_on_public_port = false;
  // Limits of the callback (HTTP) listener; see http::ServerOptions.
  absl::Duration http_read_timeout = absl::Seconds(5);
  absl::Duration http_idle_timeout = absl::Seconds(5);
  int64_t http_max_connections = 1024;
  int64_t http_max_connections_per_address = 256;
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
  // At most this many read connections per broker (1..256); each broker
  // also opens one write and one LISTEN connection. See docs/cluster.md.
  int64_t postgres_max_read_connections = 8;
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
  // The `tls` section (config/tls.cc).
  GrpcTls grpc_tls;
  HttpTls http_tls;
  absl::Duration tls_reload_interval = absl::Minutes(1);
  // Plaintext gRPC on a non-loopback listen.grpc is refused unless this is
  // set (TLS terminated in front of the broker); the broker then warns.
  bool allow_plaintext_grpc = false;
  Limits limits;
  // Push targets (config/deliveries.h).
  Deliveries deliveries;

  const Bucket* FindBucket(const std::string& name) const;
};

// Parses YAML text. `source` names the file in error messages. Errors are
// InvalidArgument "<source>: <field>: <reason>". Strict: an unknown or
// repeated key in any mapping is an error naming its path.
absl::StatusOr<Config> ParseConfig(const std::string& yaml_text,
                                   const std::string& source);

// Reads the file, then applies environment overrides:
//   UB_GRPC_LISTEN, UB_HTTP_LISTEN, UB_ADMIN_LISTEN, UB_CALLBACK_URL, UB_LEDGER_PATH,
//   UB_TRUSTED_KEY_FILE, UB_TRUSTED_KEY_URL, UB_POSTGRES_DSN_FILE.
absl::StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace uploadbroker::config

#endif  // UPLOADBROKER_CONFIG_CONFIG_H_
