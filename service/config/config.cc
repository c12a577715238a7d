#include "config/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/oss_names.h"
#include "common/url.h"
#include "common/status_macros.h"
#include "common/url.h"
#include "config/deliveries_parse.h"
#include "config/reader.h"
#include "config/tls.h"
#include "yaml-cpp/yaml.h"

namespace uploadbroker::config {
namespace {

// The keys each mapping accepts (Reader::Map); one list per mapping.
constexpr absl::string_view kTopKeys[] = {"development", "listen",      "callback",
                                           "ledger",      "credentials", "buckets",
                                           "callers",     "default_ttl", "reconcile",
                                           "tls",         "limits",      "callback_listener",
                                           "deliveries"};
constexpr absl::string_view kListenKeys[] = {"grpc", "http", "admin", "metrics_on_public_port"};
constexpr absl::string_view kCallbackListenerKeys[] = {
    "read_timeout", "idle_timeout", "max_connections", "max_connections_per_address"};
constexpr absl::string_view kCallbackKeys[] = {"url", "response_extra", "trusted_key_file",
                                               "trusted_key_url", "confirm_completions"};
constexpr absl::string_view kLedgerKeys[] = {"path", "retain_events", "retain_age",
                                             "retain_settled", "postgres"};
constexpr absl::string_view kPostgresKeys[] = {"dsn_file", "max_read_connections"};
constexpr absl::string_view kReconcileKeys[] = {"enabled", "interval", "grace"};
constexpr absl::string_view kCredentialsKeys[] = {"access_key_id_file", "access_key_secret_file",
                                                  "sts_file"};
constexpr absl::string_view kBucketKeys[] = {"name", "region", "endpoint", "public_host",
                                             "path_style"};
constexpr absl::string_view kCallerKeys[] = {"name",     "api_key_sha256", "buckets",
                                             "key_prefixes", "max_size",   "content_types",
                                             "max_ttl", "client_cert_uri", "read_callers"};
constexpr absl::string_view kLimitsKeys[] = {"grpc_max_receive_bytes",
                                             "subscribe_streams_per_caller"};

absl::Status ParseBucket(const Reader& r, const YAML::Node& n, const std::string& f,
                         Bucket* b) {
  if (!n.IsMap()) return r.Fail(f, "must be a map");
  UB_RETURN_IF_ERROR(r.Map(n, f, kBucketKeys));
  UB_RETURN_IF_ERROR(r.String(n["name"], f + ".name", &b->name, true));
  if (!common::IsValidBucketName(b->name)) {
    return r.Fail(f + ".name", absl::StrCat("'", b->name, "' is not an OSS bucket name (3-63 lowercase "
                                            "letters, digits and hyphens, starting and ending with "
                                            "a letter or digit)"));
  }
  UB_RETURN_IF_ERROR(r.String(n["region"], f + ".region", &b->region, true));
  UB_RETURN_IF_ERROR(r.String(n["endpoint"], f + ".endpoint", &b->endpoint, true));
  UB_RETURN_IF_ERROR(r.String(n["public_host"], f + ".public_host", &b->public_host));
  UB_RETURN_IF_ERROR(r.Bool(n["path_style"], f + ".path_style", &b->path_style));
  b->region = std::string(absl::StripPrefix(b->region, "oss-"));
  absl::string_view host = b->endpoint;
  if (absl::ConsumePrefix(&host, "https://")) {
    b->scheme = "https";
  } else if (absl::ConsumePrefix(&host, "http://")) {
    b->scheme = "http";
  } else {
    return r.Fail(f + ".endpoint", "must start with https:// or http://");
  }
  host = absl::StripSuffix(host, "/");
  if (host.empty() || absl::StrContains(host, "/")) {
    return r.Fail(f + ".endpoint", "must be a scheme and host only");
  }
  b->api_host = b->path_style ? std::string(host) : absl::StrCat(b->name, ".", host);
  if (b->public_host.empty()) b->public_host = b->api_host;
  return absl::OkStatus();
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A configured prefix bounds what a caller may sign: it must be a safe key
// prefix (common::CheckObjectKey) ending with '/', so "uploads/a/" never
// also admits "uploads/ab/...".
absl::Status CheckKeyPrefix(const Reader& r, const std::string& field, const std::string& prefix) {
  if (prefix.empty()) return r.Fail(field, "must not be empty (leave key_prefixes out to allow any key)");
  UB_RETURN_IF_ERROR(r.Wrap(common::CheckObjectKey(field, prefix)));
  if (prefix.back() != '/') return r.Fail(field, absl::StrCat("must end with '/' (e.g. '", prefix, "/')"));
  return absl::OkStatus();
}

absl::Status ParseCaller(const Reader& r, const YAML::Node& n, const std::string& f,
                         const Config& cfg, Caller* c) {
  if (!n.IsMap()) return r.Fail(f, "must be a map");
  UB_RETURN_IF_ERROR(r.Map(n, f, kCallerKeys));
  UB_RETURN_IF_ERROR(r.String(n["name"], f + ".name", &c->name, true));
  UB_RETURN_IF_ERROR(r.String(n["client_cert_uri"], f + ".client_cert_uri", &c->client_cert_uri));
  if (!c->client_cert_uri.empty() &&
      (c->client_cert_uri.find(':') == std::string::npos ||
       c->client_cert_uri.find_first_of(" \t\r\n") != std::string::npos)) {
    return r.Fail(f + ".client_cert_uri",
                  "must be a URI (a URI SAN of the client certificate, e.g. spiffe://example.org/app)");
  }
  // With a client certificate URI the API key is optional.
  UB_RETURN_IF_ERROR(r.String(n["api_key_sha256"], f + ".api_key_sha256", &c->api_key_sha256,
                              c->client_cert_uri.empty()));
  if (!c->api_key_sha256.empty() && (c->api_key_sha256.size() != 64 || !IsLowerHex(c->api_key_sha256))) {
    return r.Fail(f + ".api_key_sha256", "must be 64 lowercase hex digits (sha256 of the API key)");
  }
  UB_RETURN_IF_ERROR(r.StringList(n["buckets"], f + ".buckets", &c->buckets));
  if (c->buckets.empty()) return r.Fail(f + ".buckets", "must list at least one bucket");
  for (size_t i = 0; i < c->buckets.size(); ++i) {
    if (cfg.FindBucket(c->buckets[i]) == nullptr) {
      return r.Fail(absl::StrCat(f, ".buckets[", i, "]"),
                    absl::StrCat("unknown bucket '", c->buckets[i], "'"));
    }
  }
  UB_RETURN_IF_ERROR(r.StringList(n["key_prefixes"], f + ".key_prefixes", &c->key_prefixes));
  for (size_t i = 0; i < c->key_prefixes.size(); ++i) {
    UB_RETURN_IF_ERROR(CheckKeyPrefix(r, absl::StrCat(f, ".key_prefixes[", i, "]"), c->key_prefixes[i]));
  }
  UB_RETURN_IF_ERROR(r.Int(n["max_size"], f + ".max_size", &c->max_size));
  if (c->max_size <= 0 || c->max_size > common::kMaxObjectSize) {
    return r.Fail(f + ".max_size", absl::StrCat("must be between 1 and ", common::kMaxObjectSize,
                                                " (OSS's largest object, 10,000 parts of 5 GiB)"));
  }
  UB_RETURN_IF_ERROR(r.StringList(n["content_types"], f + ".content_types", &c->content_types));
  UB_RETURN_IF_ERROR(r.Duration(n["max_ttl"], f + ".max_ttl", &c->max_ttl));
  if (c->max_ttl > absl::Hours(24 * 7)) return r.Fail(f + ".max_ttl", "must be at most 168h (7 days)");
  UB_RETURN_IF_ERROR(r.StringList(n["read_callers"], f + ".read_callers", &c->read_callers));
  return absl::OkStatus();
}

// read_callers name configured callers (checked once all are read), or "*"
// alone.
absl::Status CheckReadCallers(const Reader& r, const Config& cfg) {
  for (size_t i = 0; i < cfg.callers.size(); ++i) {
    const std::vector<std::string>& readers = cfg.callers[i].read_callers;
    for (size_t j = 0; j < readers.size(); ++j) {
      const std::string field = absl::StrCat("callers[", i, "].read_callers[", j, "]");
      if (readers[j] == "*") {
        if (readers.size() != 1) return r.Fail(field, "'*' (every caller) must be the only entry");
        continue;
      }
      bool known = false;
      for (const Caller& c : cfg.callers) known = known || c.name == readers[j];
      if (!known) return r.Fail(field, absl::StrCat("unknown caller '", readers[j], "'"));
      for (size_t k = 0; k < j; ++k) {
        if (readers[k] == readers[j]) return r.Fail(field, absl::StrCat("'", readers[j], "' listed twice"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ParseLimits(const Reader& r, const YAML::Node& n, Limits* out) {
  UB_RETURN_IF_ERROR(r.Map(n, "limits", kLimitsKeys));
  if (!n) return absl::OkStatus();
  UB_RETURN_IF_ERROR(r.Int(n["grpc_max_receive_bytes"], "limits.grpc_max_receive_bytes",
                           &out->grpc_max_receive_bytes));
  // Below 64 KiB a request with repeated fields at their caps would not fit;
  // above 64 MiB one message could hold a broker thread for long.
  if (out->grpc_max_receive_bytes < (64 << 10) || out->grpc_max_receive_bytes > (64 << 20)) {
    return r.Fail("limits.grpc_max_receive_bytes", "must be between 65536 (64 KiB) and 67108864 (64 MiB)");
  }
  UB_RETURN_IF_ERROR(r.Int(n["subscribe_streams_per_caller"], "limits.subscribe_streams_per_caller",
                           &out->subscribe_streams_per_caller));
  if (out->subscribe_streams_per_caller < 1 || out->subscribe_streams_per_caller > 10000) {
    return r.Fail("limits.subscribe_streams_per_caller", "must be between 1 and 10000");
  }
  return absl::OkStatus();
}

absl::Status ParseCredentials(const Reader& r, const YAML::Node& cred, CredentialSource* out) {
  if (!cred) return r.Fail("credentials", "required");
  UB_RETURN_IF_ERROR(r.Map(cred, "credentials", kCredentialsKeys));
  UB_RETURN_IF_ERROR(r.String(cred["access_key_id_file"], "credentials.access_key_id_file",
                              &out->access_key_id_file));
  UB_RETURN_IF_ERROR(r.String(cred["access_key_secret_file"], "credentials.access_key_secret_file",
                              &out->access_key_secret_file));
  UB_RETURN_IF_ERROR(r.String(cred["sts_file"], "credentials.sts_file", &out->sts_file));
  bool has_pair = !out->access_key_id_file.empty() || !out->access_key_secret_file.empty();
  bool has_sts = !out->sts_file.empty();
  if (has_pair == has_sts) {
    return r.Fail("credentials", "set either access_key_id_file and access_key_secret_file, or sts_file");
  }
  if (has_pair && (out->access_key_id_file.empty() || out->access_key_secret_file.empty())) {
    return r.Fail("credentials", "access_key_id_file and access_key_secret_file go together");
  }
  return absl::OkStatus();
}

// callback_listener: the HTTP listener's abuse limits.
absl::Status ParseCallbackListener(const Reader& r, const YAML::Node& n, Config* cfg) {
  UB_RETURN_IF_ERROR(r.Map(n, "callback_listener", kCallbackListenerKeys));
  if (!n) return absl::OkStatus();
  struct {
    const char* key;
    absl::Duration* out;
  } durations[] = {{"read_timeout", &cfg->http_read_timeout},
                   {"idle_timeout", &cfg->http_idle_timeout}};
  for (const auto& d : durations) {
    const std::string field = absl::StrCat("callback_listener.", d.key);
    UB_RETURN_IF_ERROR(r.Duration(n[d.key], field, d.out));
    if (*d.out <= absl::ZeroDuration() || *d.out > absl::Minutes(10)) {
      return r.Fail(field, "must be more than 0s and at most 10m");
    }
  }
  struct {
    const char* key;
    int64_t* out;
  } counts[] = {{"max_connections", &cfg->http_max_connections},
                {"max_connections_per_address", &cfg->http_max_connections_per_address}};
  for (const auto& c : counts) {
    const std::string field = absl::StrCat("callback_listener.", c.key);
    UB_RETURN_IF_ERROR(r.Int(n[c.key], field, c.out));
    if (*c.out < 1 || *c.out > 1000000) return r.Fail(field, "must be between 1 and 1000000");
  }
  if (cfg->http_max_connections_per_address > cfg->http_max_connections) {
    return r.Fail("callback_listener.max_connections_per_address",
                  "must not exceed callback_listener.max_connections");
  }
  return absl::OkStatus();
}

absl::Status ParseInto(const Reader& r, const YAML::Node& root, Config* cfg) {
  if (!root.IsMap()) return r.Fail("(top level)", "must be a map");
  UB_RETURN_IF_ERROR(r.Map(root, "", kTopKeys));
  UB_RETURN_IF_ERROR(r.Bool(root["development"], "development", &cfg->development));

  const YAML::Node listen = root["listen"];
  UB_RETURN_IF_ERROR(r.Map(listen, "listen", kListenKeys));
  if (listen) {
    UB_RETURN_IF_ERROR(r.String(listen["grpc"], "listen.grpc", &cfg->grpc_listen));
    UB_RETURN_IF_ERROR(r.String(listen["http"], "listen.http", &cfg->http_listen));
    UB_RETURN_IF_ERROR(r.String(listen["admin"], "listen.admin", &cfg->admin_listen));
    UB_RETURN_IF_ERROR(r.Bool(listen["metrics_on_public_port"], "listen.metrics_on_public_port",
                              &cfg->metrics_on_public_port));
    if (cfg->metrics_on_public_port && !cfg->admin_listen.empty()) {
      return r.Fail("listen.metrics_on_public_port",
                    "only without listen.admin (with it, /metrics is served on the admin listener)");
    }
  }
  UB_RETURN_IF_ERROR(ParseCallbackListener(r, root["callback_listener"], cfg));

  const YAML::Node cb = root["callback"];
  if (!cb) return r.Fail("callback.url", "required");
  UB_RETURN_IF_ERROR(r.Map(cb, "callback", kCallbackKeys));
  UB_RETURN_IF_ERROR(r.String(cb["url"], "callback.url", &cfg->callback_url, true));
  UB_RETURN_IF_ERROR(r.StringMap(cb["response_extra"], "callback.response_extra",
                                 &cfg->callback_response_extra));
  UB_RETURN_IF_ERROR(r.String(cb["trusted_key_file"], "callback.trusted_key_file", &cfg->trusted_key_file));
  UB_RETURN_IF_ERROR(r.String(cb["trusted_key_url"], "callback.trusted_key_url", &cfg->trusted_key_url));
  UB_RETURN_IF_ERROR(r.Bool(cb["confirm_completions"], "callback.confirm_completions",
                            &cfg->confirm_completions));

  const YAML::Node ledger = root["ledger"];
  UB_RETURN_IF_ERROR(r.Map(ledger, "ledger", kLedgerKeys));
  if (ledger) {
    UB_RETURN_IF_ERROR(r.String(ledger["path"], "ledger.path", &cfg->ledger_path));
    UB_RETURN_IF_ERROR(r.Int(ledger["retain_events"], "ledger.retain_events", &cfg->retain_events));
    if (cfg->retain_events < 0) return r.Fail("ledger.retain_events", "must not be negative");
    UB_RETURN_IF_ERROR(r.Duration(ledger["retain_age"], "ledger.retain_age", &cfg->retain_age));
    UB_RETURN_IF_ERROR(
        r.Duration(ledger["retain_settled"], "ledger.retain_settled", &cfg->retain_settled));
    const YAML::Node pg = ledger["postgres"];
    UB_RETURN_IF_ERROR(r.Map(pg, "ledger.postgres", kPostgresKeys));
    if (pg) {
      UB_RETURN_IF_ERROR(r.String(pg["dsn_file"], "ledger.postgres.dsn_file",
                                  &cfg->postgres_dsn_file, true));
      UB_RETURN_IF_ERROR(r.Int(pg["max_read_connections"], "ledger.postgres.max_read_connections",
                               &cfg->postgres_max_read_connections));
      if (cfg->postgres_max_read_connections < 1 || cfg->postgres_max_read_connections > 256) {
        return r.Fail("ledger.postgres.max_read_connections", "must be between 1 and 256");
      }
    }
  }
  UB_RETURN_IF_ERROR(r.Duration(root["default_ttl"], "default_ttl", &cfg->default_ttl));

  const YAML::Node rec = root["reconcile"];
  UB_RETURN_IF_ERROR(r.Map(rec, "reconcile", kReconcileKeys));
  if (rec) {
    UB_RETURN_IF_ERROR(r.Bool(rec["enabled"], "reconcile.enabled", &cfg->reconcile));
    UB_RETURN_IF_ERROR(r.Duration(rec["interval"], "reconcile.interval", &cfg->reconcile_interval));
    UB_RETURN_IF_ERROR(r.Duration(rec["grace"], "reconcile.grace", &cfg->reconcile_grace));
  }

  UB_RETURN_IF_ERROR(ParseCredentials(r, root["credentials"], &cfg->credentials));

  const YAML::Node buckets = root["buckets"];
  if (!buckets || !buckets.IsSequence() || buckets.size() == 0) {
    return r.Fail("buckets", "must list at least one bucket");
  }
  for (size_t i = 0; i < buckets.size(); ++i) {
    Bucket b;
    std::string f = absl::StrCat("buckets[", i, "]");
    UB_RETURN_IF_ERROR(ParseBucket(r, buckets[i], f, &b));
    if (cfg->FindBucket(b.name) != nullptr) return r.Fail(f + ".name", "duplicate bucket");
    cfg->buckets.push_back(std::move(b));
  }
  const YAML::Node callers = root["callers"];
  if (!callers || !callers.IsSequence() || callers.size() == 0) {
    return r.Fail("callers", "must list at least one caller");
  }
  for (size_t i = 0; i < callers.size(); ++i) {
    Caller c;
    std::string f = absl::StrCat("callers[", i, "]");
    UB_RETURN_IF_ERROR(ParseCaller(r, callers[i], f, *cfg, &c));
    for (const Caller& other : cfg->callers) {
      if (other.name == c.name) return r.Fail(f + ".name", "duplicate caller");
      if (!c.api_key_sha256.empty() && other.api_key_sha256 == c.api_key_sha256) return r.Fail(f + ".api_key_sha256", "same key as another caller");
    }
    cfg->callers.push_back(std::move(c));
  }
  UB_RETURN_IF_ERROR(CheckReadCallers(r, *cfg));
  UB_RETURN_IF_ERROR(ParseLimits(r, root["limits"], &cfg->limits));
  UB_RETURN_IF_ERROR(internal::ParseDeliveries(r, root["deliveries"], cfg));
  return internal::ParseTls(r, root["tls"], cfg);
}

absl::Status ValidateCallbackUrl(const Reader& r, const Config& cfg) {
  const std::string& url = cfg.callback_url;
  for (char c : url) {
    if (c == '+' || c == ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) >= 0x7F) {
      return r.Fail("callback.url", "must not contain '+', spaces or non-ASCII characters (percent-encode them)");
    }
  }
  absl::StatusOr<common::Url> parsed = common::ParseUrl(url, common::DotSegments::kKeep);
  if (!parsed.ok() || (parsed->scheme != "https" && parsed->scheme != "http")) {
    return r.Fail("callback.url", "must start with https:// or http://");
  }
  if (parsed->host.empty() || url.find('/', parsed->scheme.size() + 3) == std::string::npos) {
    return r.Fail("callback.url", "must have a host and a path, e.g. https://broker.example.com/oss/callback");
  }
  return absl::OkStatus();
}

// What only a development setup (a local simulator) may do; see
// Config::development. Run again after environment overrides.
absl::Status CheckDevelopmentOnly(const Reader& r, const Config& cfg) {
  if (cfg.development) return absl::OkStatus();
  constexpr absl::string_view kHint = " (development only: set development: true for a local simulator)";
  for (size_t i = 0; i < cfg.buckets.size(); ++i) {
    if (cfg.buckets[i].scheme != "https") {
      return r.Fail(absl::StrCat("buckets[", i, "].endpoint"),
                    absl::StrCat("must be https:// (plain HTTP exposes signed requests and answers)", kHint));
    }
  }
  if (cfg.trusted_key_url.empty()) return absl::OkStatus();
  if (!absl::StartsWith(cfg.trusted_key_url, "https://")) {
    return r.Fail("callback.trusted_key_url",
                  absl::StrCat("trusting a key named by a plain http:// URL is for a simulator", kHint));
  }
  if (cfg.trusted_key_file.empty()) {
    return r.Fail("callback.trusted_key_url",
                  absl::StrCat("needs callback.trusted_key_file: outside development a trusted key is "
                               "read from a file, never fetched",
                               kHint));
  }
  return absl::OkStatus();
}

// Rules across fields, checked on the file and again after overrides.
absl::Status Validate(const Reader& r, const Config& cfg) {
  UB_RETURN_IF_ERROR(ValidateCallbackUrl(r, cfg));
  UB_RETURN_IF_ERROR(internal::ValidateTls(r, cfg));
  return CheckDevelopmentOnly(r, cfg);
}

}  // namespace

const Bucket* Config::FindBucket(const std::string& name) const {
  for (const Bucket& b : buckets) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

absl::StatusOr<Config> ParseConfig(const std::string& yaml_text,
                                   const std::string& source) {
  Reader r(source);
  Config cfg;
  cfg.source = source;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
    UB_RETURN_IF_ERROR(ParseInto(r, root, &cfg));
  } catch (const YAML::Exception& e) {
    return r.Fail(absl::StrCat("line ", e.mark.line + 1), e.msg);
  }
  UB_RETURN_IF_ERROR(Validate(r, cfg));
  return cfg;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read the config file"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<Config> cfg = ParseConfig(text.str(), path);
  if (!cfg.ok()) return cfg.status();
  struct Override {
    const char* env;
    std::string* field;
  } overrides[] = {
      {"UB_GRPC_LISTEN", &cfg->grpc_listen},       {"UB_HTTP_LISTEN", &cfg->http_listen},
      {"UB_ADMIN_LISTEN", &cfg->admin_listen},
      {"UB_CALLBACK_URL", &cfg->callback_url},     {"UB_LEDGER_PATH", &cfg->ledger_path},
      {"UB_TRUSTED_KEY_FILE", &cfg->trusted_key_file}, {"UB_TRUSTED_KEY_URL", &cfg->trusted_key_url},
      {"UB_POSTGRES_DSN_FILE", &cfg->postgres_dsn_file},
  };
  for (const Override& o : overrides) {
    if (const char* v = std::getenv(o.env); v != nullptr && *v != '\0') *o.field = v;
  }
  Reader r(absl::StrCat(path, " (after environment overrides)"));
  UB_RETURN_IF_ERROR(Validate(r, *cfg));
  return cfg;
}

}  // namespace uploadbroker::config
