#include "pipeline/config.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace nlpflow {
namespace {

// Maps whose keys are free-form (librdkafka property names contain dots).
bool IsFreeFormMap(const std::string& section, const std::string& field) {
  return section == "kafka" && (field == "consumer" || field == "producer");
}

Status KeyError(const std::string& key, const std::string& problem) {
  return Status::InvalidArgument("config key " + key + ": " + problem);
}

std::string Describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "nothing";
}

// Reads one field of a section. The field functions below convert and
// report type errors with the full key.
template <typename T>
Status Convert(const YAML::Node& node, const std::string& key,
               const char* expected, T* out) {
  if (!node.IsScalar()) {
    return KeyError(key, std::string("expected ") + expected + ", got " +
                             Describe(node));
  }
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return KeyError(key, std::string("expected ") + expected + ", got " +
                             Describe(node));
  }
  return Status::Ok();
}

Status ReadField(const YAML::Node& n, const std::string& key, std::string* out) {
  return Convert(n, key, "a string", out);
}
Status ReadField(const YAML::Node& n, const std::string& key, int* out) {
  return Convert(n, key, "an integer", out);
}
Status ReadField(const YAML::Node& n, const std::string& key, int64_t* out) {
  return Convert(n, key, "an integer", out);
}
Status ReadField(const YAML::Node& n, const std::string& key, bool* out) {
  return Convert(n, key, "true or false", out);
}
Status ReadField(const YAML::Node& n, const std::string& key,
                 std::vector<std::string>* out) {
  out->clear();
  if (n.IsScalar()) {  // a single topic may be written without brackets
    out->push_back(n.Scalar());
    return Status::Ok();
  }
  if (!n.IsSequence()) {
    return KeyError(key, "expected a list of strings, got " + Describe(n));
  }
  for (const auto& item : n) {
    if (!item.IsScalar()) {
      return KeyError(key, "expected a list of strings, got an item that is " +
                               Describe(item));
    }
    out->push_back(item.Scalar());
  }
  return Status::Ok();
}
Status ReadField(const YAML::Node& n, const std::string& key,
                 std::map<std::string, std::string>* out) {
  out->clear();
  if (n.IsNull()) return Status::Ok();
  if (!n.IsMap()) return KeyError(key, "expected a map, got " + Describe(n));
  for (const auto& kv : n) {
    const std::string name = kv.first.as<std::string>();
    if (!kv.second.IsScalar()) {
      return KeyError(key + "." + name, "expected a scalar value, got " +
                                            Describe(kv.second));
    }
    (*out)[name] = kv.second.Scalar();
  }
  return Status::Ok();
}

bool LooksSecret(const std::string& name) {
  for (const char* word : {"password", "secret", "key.pem", "private", "token", "jaas",
                           "credential"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

// Writes one field's value for DumpConfig.
template <typename T>
void EmitField(YAML::Emitter& out, const T& v) {
  out << v;
}
void EmitField(YAML::Emitter& out, const std::vector<std::string>& v) {
  out << YAML::Flow << v;
}
void EmitField(YAML::Emitter& out, const std::map<std::string, std::string>& m) {
  out << YAML::BeginMap;
  for (const auto& [k, v] : m) out << YAML::Key << k << YAML::Value << (LooksSecret(k) ? "****" : v);
  out << YAML::EndMap;
}

// A secret field: its value is masked when dumped (if set).
struct Secret {
  std::string* value;
};
Status ReadField(const YAML::Node& n, const std::string& key, Secret* out) {
  return Convert(n, key, "a string", out->value);
}
void EmitField(YAML::Emitter& out, const Secret& v) {
  out << (v.value->empty() ? std::string() : std::string("****"));
}

// One section: its fields by name. Reading a section rejects unknown keys;
// dumping writes every field, in the order they were declared.
class Section {
 public:
  explicit Section(std::string name) : name_(std::move(name)) {}

  template <typename T>
  Section& Field(const std::string& field, T* target) {
    readers_[field] = [key = name_ + "." + field, target](const YAML::Node& n) {
      return ReadField(n, key, target);
    };
    emitters_.emplace_back(field, [target](YAML::Emitter& out) { EmitField(out, *target); });
    return *this;
  }

  Section& SecretField(const std::string& field, std::string* target) {
    readers_[field] = [key = name_ + "." + field, target](const YAML::Node& n) {
      Secret s{target};
      return ReadField(n, key, &s);
    };
    emitters_.emplace_back(field, [target](YAML::Emitter& out) { EmitField(out, Secret{target}); });
    return *this;
  }

  void Dump(YAML::Emitter& out) const {
    out << YAML::Key << name_ << YAML::Value << YAML::BeginMap;
    for (const auto& [field, emit] : emitters_) {
      out << YAML::Key << field << YAML::Value;
      emit(out);
    }
    out << YAML::EndMap;
  }

  Status Read(const YAML::Node& node) const {
    if (!node || node.IsNull()) return Status::Ok();
    if (!node.IsMap()) {
      return KeyError(name_, "expected a map, got " + Describe(node));
    }
    for (const auto& kv : node) {
      const std::string field = kv.first.as<std::string>();
      auto it = readers_.find(field);
      if (it == readers_.end()) {
        return KeyError(name_ + "." + field, "unknown key (known: " +
                                                 KnownKeys() + ")");
      }
      NLPFLOW_RETURN_IF_ERROR(it->second(kv.second));
    }
    return Status::Ok();
  }

  const std::string& name() const { return name_; }

 private:
  std::string KnownKeys() const {
    std::string out;
    for (const auto& [field, unused] : readers_) {
      if (!out.empty()) out += ", ";
      out += field;
    }
    return out;
  }

  std::string name_;
  std::map<std::string, std::function<Status(const YAML::Node&)>> readers_;
  std::vector<std::pair<std::string, std::function<void(YAML::Emitter&)>>> emitters_;
};

std::vector<Section> Sections(Config* c) {
  std::vector<Section> s;
  s.emplace_back("kafka");
  s.back()
      .Field("bootstrap_servers", &c->kafka.bootstrap_servers)
      .Field("group_id", &c->kafka.group_id)
      .Field("client_id", &c->kafka.client_id)
      .Field("input_topics", &c->kafka.input_topics)
      .Field("output_topic", &c->kafka.output_topic)
      .Field("dead_letter_topic", &c->kafka.dead_letter_topic)
      .Field("topic_partitions", &c->kafka.topic_partitions)
      .Field("topic_replication", &c->kafka.topic_replication)
      .Field("commit_interval_ms", &c->kafka.commit_interval_ms)
      .Field("connect_timeout_ms", &c->kafka.connect_timeout_ms)
      .Field("consumer", &c->kafka.consumer)
      .Field("producer", &c->kafka.producer);
  s.emplace_back("input");
  s.back()
      .Field("format", &c->input.format)
      .Field("json_text_field", &c->input.json_text_field)
      .Field("json_id_field", &c->input.json_id_field)
      .Field("max_record_bytes", &c->input.max_record_bytes);
  s.emplace_back("tokenizer");
  s.back()
      .Field("path", &c->tokenizer.path)
      .Field("max_length", &c->tokenizer.max_length);
  s.emplace_back("batch");
  s.back()
      .Field("policy", &c->batch.policy)
      .Field("max_batch_size", &c->batch.max_batch_size)
      .Field("max_batch_tokens", &c->batch.max_batch_tokens)
      .Field("max_batch_real_tokens", &c->batch.max_batch_real_tokens)
      .Field("max_queue_delay_us", &c->batch.max_queue_delay_us)
      .Field("deadline_ms", &c->batch.deadline_ms)
      .Field("on_expired", &c->batch.on_expired)
      .Field("priority_header", &c->batch.priority_header);
  s.emplace_back("model");
  s.back()
      .Field("path", &c->model.path)
      .Field("name", &c->model.name)
      .Field("version", &c->model.version)
      .Field("task", &c->model.task)
      .Field("pooling", &c->model.pooling)
      .Field("normalize", &c->model.normalize)
      .Field("precision", &c->model.precision)
      .Field("threads", &c->model.threads)
      .Field("instances", &c->model.instances);
  s.emplace_back("output");
  s.back().Field("format", &c->output.format);
  s.emplace_back("pipeline");
  s.back()
      .Field("max_in_flight", &c->pipeline.max_in_flight)
      .Field("shutdown_timeout_ms", &c->pipeline.shutdown_timeout_ms)
      .Field("tokenize_concurrency", &c->pipeline.tokenize_concurrency)
      .Field("ordered_per_partition", &c->pipeline.ordered_per_partition);
  s.emplace_back("metrics");
  s.back().Field("listen", &c->metrics.listen);
  s.emplace_back("delivery");
  s.back()
      .Field("mode", &c->delivery.mode)
      .Field("transactional_id", &c->delivery.transactional_id)
      .Field("instance_id", &c->delivery.instance_id)
      .Field("commit_interval_ms", &c->delivery.commit_interval_ms)
      .Field("transaction_timeout_ms", &c->delivery.transaction_timeout_ms)
      .Field("revoke_timeout_ms", &c->delivery.revoke_timeout_ms);
  s.emplace_back("security");
  s.back()
      .Field("protocol", &c->security.protocol)
      .Field("sasl_mechanism", &c->security.sasl_mechanism)
      .Field("sasl_username", &c->security.sasl_username)
      .SecretField("sasl_password", &c->security.sasl_password)
      .Field("sasl_password_file", &c->security.sasl_password_file)
      .Field("ssl_ca_location", &c->security.ssl_ca_location)
      .Field("ssl_certificate_location", &c->security.ssl_certificate_location)
      .Field("ssl_key_location", &c->security.ssl_key_location)
      .SecretField("ssl_key_password", &c->security.ssl_key_password)
      .Field("ssl_key_password_file", &c->security.ssl_key_password_file)
      .Field("ssl_verify_hostname", &c->security.ssl_verify_hostname);
  s.emplace_back("logging");
  s.back().Field("level", &c->logging.level);
  return s;
}

Status ApplyOverride(YAML::Node& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument("--set " + assignment +
                                   ": expected key=value");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string value_text = assignment.substr(eq + 1);
  const size_t dot1 = key.find('.');
  if (dot1 == std::string::npos) {
    return KeyError(key, "expected section.field (for example batch.max_batch_size)");
  }
  const std::string section = key.substr(0, dot1);
  std::string field = key.substr(dot1 + 1);
  std::string map_key;
  const size_t dot2 = field.find('.');
  if (dot2 != std::string::npos) {
    if (!IsFreeFormMap(section, field.substr(0, dot2))) {
      return KeyError(key, "unknown key");
    }
    map_key = field.substr(dot2 + 1);
    field = field.substr(0, dot2);
  }
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    return KeyError(key, "value is not valid YAML: " + std::string(e.what()));
  }
  if (!root[section] || root[section].IsNull()) root[section] = YAML::Node(YAML::NodeType::Map);
  if (!root[section].IsMap()) {
    return KeyError(section, "expected a map, got " + Describe(root[section]));
  }
  if (map_key.empty()) {
    root[section][field] = value;
  } else {
    if (!root[section][field] || root[section][field].IsNull()) {
      root[section][field] = YAML::Node(YAML::NodeType::Map);
    }
    // Property values stay strings exactly as written.
    root[section][field][map_key] = value_text;
  }
  return Status::Ok();
}

bool IsOneOf(const std::string& v, std::initializer_list<const char*> options) {
  for (const char* o : options) {
    if (v == o) return true;
  }
  return false;
}

Status InRange(const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return KeyError(key, "must be between " + std::to_string(lo) + " and " +
                             std::to_string(hi) + ", got " + std::to_string(v));
  }
  return Status::Ok();
}

Status NotEmpty(const std::string& key, const std::string& v) {
  if (v.empty()) return KeyError(key, "must not be empty");
  return Status::Ok();
}

// Resolves "${NAME}" and *_file secrets into `value`. The errors name the
// key and the variable or file, never the secret.
Status ResolveSecret(const std::string& key, std::string* value, const std::string& file) {
  if (!file.empty()) {
    if (!value->empty()) {
      return KeyError(key, "set either it or " + key + "_file, not both");
    }
    std::ifstream in(file);
    if (!in) return KeyError(key + "_file", "cannot read " + file);
    std::stringstream text;
    text << in.rdbuf();
    *value = text.str();
    while (!value->empty() && (value->back() == '\n' || value->back() == '\r')) value->pop_back();
    return Status::Ok();
  }
  if (value->size() > 3 && value->compare(0, 2, "${") == 0 && value->back() == '}') {
    const std::string name = value->substr(2, value->size() - 3);
    const char* env = std::getenv(name.c_str());
    if (env == nullptr) {
      return KeyError(key, "environment variable " + name + " is not set");
    }
    *value = env;
  }
  return Status::Ok();
}

Status ValidateSecurity(SecurityConfig* s) {
  if (!IsOneOf(s->protocol, {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"})) {
    return KeyError("security.protocol",
                    "must be plaintext, ssl, sasl_plaintext or sasl_ssl, got '" + s->protocol + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(
      ResolveSecret("security.sasl_password", &s->sasl_password, s->sasl_password_file));
  NLPFLOW_RETURN_IF_ERROR(
      ResolveSecret("security.ssl_key_password", &s->ssl_key_password, s->ssl_key_password_file));
  const bool sasl = s->protocol.rfind("sasl_", 0) == 0;
  if (sasl) {
    if (!IsOneOf(s->sasl_mechanism, {"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"})) {
      return KeyError("security.sasl_mechanism",
                      "must be SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN, got '" + s->sasl_mechanism + "'");
    }
    NLPFLOW_RETURN_IF_ERROR(NotEmpty("security.sasl_username", s->sasl_username));
    if (s->sasl_password.empty()) {
      return KeyError("security.sasl_password", "must be set (or security.sasl_password_file) for " +
                                                    s->protocol);
    }
  } else if (!s->sasl_username.empty() || !s->sasl_password.empty()) {
    return KeyError("security.protocol", "is " + s->protocol +
                                             ", but SASL credentials are set: use sasl_plaintext or sasl_ssl");
  }
  return Status::Ok();
}

Status Validate(const Config& c) {
  NLPFLOW_RETURN_IF_ERROR(NotEmpty("kafka.bootstrap_servers", c.kafka.bootstrap_servers));
  NLPFLOW_RETURN_IF_ERROR(NotEmpty("kafka.group_id", c.kafka.group_id));
  if (c.kafka.input_topics.empty()) {
    return KeyError("kafka.input_topics", "must name at least one topic");
  }
  for (const auto& t : c.kafka.input_topics) {
    NLPFLOW_RETURN_IF_ERROR(NotEmpty("kafka.input_topics", t));
  }
  NLPFLOW_RETURN_IF_ERROR(NotEmpty("kafka.output_topic", c.kafka.output_topic));
  NLPFLOW_RETURN_IF_ERROR(NotEmpty("kafka.dead_letter_topic", c.kafka.dead_letter_topic));
  for (const auto& t : c.kafka.input_topics) {
    if (t == c.kafka.output_topic || t == c.kafka.dead_letter_topic) {
      return KeyError("kafka.input_topics",
                      "topic '" + t + "' is also an output or dead-letter topic");
    }
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("kafka.topic_partitions", c.kafka.topic_partitions, 1, 10000));
  NLPFLOW_RETURN_IF_ERROR(InRange("kafka.topic_replication", c.kafka.topic_replication, 1, 100));
  NLPFLOW_RETURN_IF_ERROR(InRange("kafka.commit_interval_ms", c.kafka.commit_interval_ms, 1, 3600000));
  NLPFLOW_RETURN_IF_ERROR(InRange("kafka.connect_timeout_ms", c.kafka.connect_timeout_ms, 100, 600000));
  if (!IsOneOf(c.input.format, {"text", "json", "protobuf"})) {
    return KeyError("input.format", "must be text, json or protobuf, got '" + c.input.format + "'");
  }
  if (c.input.format == "json") {
    NLPFLOW_RETURN_IF_ERROR(NotEmpty("input.json_text_field", c.input.json_text_field));
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("input.max_record_bytes", c.input.max_record_bytes, 1, int64_t{1} << 30));
  NLPFLOW_RETURN_IF_ERROR(InRange("tokenizer.max_length", c.tokenizer.max_length, 0, 8192));
  if (c.tokenizer.max_length > 0 && c.tokenizer.max_length < 3) {
    return KeyError("tokenizer.max_length", "must be 0 (the model's own) or at least 3, got " +
                                                std::to_string(c.tokenizer.max_length));
  }
  if (!IsOneOf(c.batch.policy, {"dynamic", "fixed"})) {
    return KeyError("batch.policy", "must be dynamic or fixed, got '" + c.batch.policy + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("batch.max_batch_size", c.batch.max_batch_size, 1, 4096));
  NLPFLOW_RETURN_IF_ERROR(InRange("batch.max_batch_tokens", c.batch.max_batch_tokens, 0, 16777216));
  NLPFLOW_RETURN_IF_ERROR(
      InRange("batch.max_batch_real_tokens", c.batch.max_batch_real_tokens, 0, 16777216));
  NLPFLOW_RETURN_IF_ERROR(InRange("batch.max_queue_delay_us", c.batch.max_queue_delay_us, 0, 60000000));
  NLPFLOW_RETURN_IF_ERROR(InRange("batch.deadline_ms", c.batch.deadline_ms, 0, 86400000));
  if (!IsOneOf(c.batch.on_expired, {"dead_letter", "process"})) {
    return KeyError("batch.on_expired",
                    "must be dead_letter or process, got '" + c.batch.on_expired + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(NotEmpty("model.path", c.model.path));
  if (c.model.task != "embedding") {
    return KeyError("model.task", "must be embedding (the only task so far), got '" + c.model.task + "'");
  }
  if (!IsOneOf(c.model.pooling, {"", "mean", "cls", "max"})) {
    return KeyError("model.pooling", "must be mean, cls, max or empty (the model's own), got '" +
                                         c.model.pooling + "'");
  }
  if (!IsOneOf(c.model.precision, {"fp32", "int8"})) {
    return KeyError("model.precision", "must be fp32 or int8, got '" + c.model.precision + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("model.threads", c.model.threads, 1, 256));
  NLPFLOW_RETURN_IF_ERROR(InRange("model.instances", c.model.instances, 1, 64));
  if (!IsOneOf(c.output.format, {"json", "protobuf"})) {
    return KeyError("output.format", "must be json or protobuf, got '" + c.output.format + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("pipeline.max_in_flight", c.pipeline.max_in_flight, 1, 10000000));
  NLPFLOW_RETURN_IF_ERROR(InRange("pipeline.shutdown_timeout_ms", c.pipeline.shutdown_timeout_ms, 0, 3600000));
  NLPFLOW_RETURN_IF_ERROR(InRange("pipeline.tokenize_concurrency", c.pipeline.tokenize_concurrency, 0, 1024));
  if (!c.metrics.listen.empty()) {
    NLPFLOW_RETURN_IF_ERROR(ParseListenAddress(c.metrics.listen).status());
  }
  if (!IsOneOf(c.delivery.mode, {"at_least_once", "exactly_once"})) {
    return KeyError("delivery.mode", "must be at_least_once or exactly_once, got '" +
                                         c.delivery.mode + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("delivery.commit_interval_ms", c.delivery.commit_interval_ms, 1, 600000));
  NLPFLOW_RETURN_IF_ERROR(InRange("delivery.transaction_timeout_ms", c.delivery.transaction_timeout_ms, 1000, 900000));
  NLPFLOW_RETURN_IF_ERROR(InRange("delivery.revoke_timeout_ms", c.delivery.revoke_timeout_ms, 0, 600000));
  if (c.delivery.mode == "exactly_once") {
    auto mt = c.kafka.producer.find("message.timeout.ms");
    if (mt != c.kafka.producer.end()) {
      int64_t v = -1;
      try {
        v = std::stoll(mt->second);
      } catch (const std::exception&) {
      }
      if (v < 0 || v > c.delivery.transaction_timeout_ms) {
        return KeyError("kafka.producer.message.timeout.ms",
                        "must be at most delivery.transaction_timeout_ms (" +
                            std::to_string(c.delivery.transaction_timeout_ms) +
                            ") in exactly_once mode, got '" + mt->second + "'");
      }
    }
    for (const char* own : {"transactional.id", "transaction.timeout.ms"}) {
      if (c.kafka.producer.count(own)) {
        return KeyError(std::string("kafka.producer.") + own,
                        "is set by delivery.* in exactly_once mode; remove it");
      }
    }
  }
  if (!IsOneOf(c.logging.level, {"trace", "debug", "info", "warn", "error", "off"})) {
    return KeyError("logging.level", "must be trace, debug, info, warn, error or off, got '" +
                                         c.logging.level + "'");
  }
  return Status::Ok();
}

}  // namespace

Result<std::pair<std::string, int>> ParseListenAddress(const std::string& listen) {
  const auto bad = [&] {
    return KeyError("metrics.listen",
                    "expected host:port (port 0 to 65535, 0 = any free port; \"\" = off), got '" +
                        listen + "'");
  };
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return bad();
  std::string host = listen.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return bad();  // an IPv6 address needs brackets
  }
  const std::string port_text = listen.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  const int port = std::stoi(port_text);
  if (port > 65535) return bad();
  return std::make_pair(host, port);
}

Result<Config> ParseConfig(const std::string& yaml_text,
                           const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    return Status::InvalidArgument(std::string("config is not valid YAML: ") + e.what());
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) {
    return Status::InvalidArgument("config must be a YAML map of sections, got " +
                                   Describe(root));
  }
  for (const auto& o : overrides) NLPFLOW_RETURN_IF_ERROR(ApplyOverride(root, o));

  Config config;
  const std::vector<Section> sections = Sections(&config);
  std::set<std::string> known;
  for (const auto& s : sections) known.insert(s.name());
  for (const auto& kv : root) {
    const std::string name = kv.first.as<std::string>();
    if (!known.count(name)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return KeyError(name, "unknown section (known: " + list + ")");
    }
  }
  for (const auto& s : sections) NLPFLOW_RETURN_IF_ERROR(s.Read(root[s.name()]));
  NLPFLOW_RETURN_IF_ERROR(Validate(config));
  NLPFLOW_RETURN_IF_ERROR(ValidateSecurity(&config.security));
  return config;
}

Result<Config> LoadConfig(const std::string& path,
                          const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("config file " + path + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseConfig(text.str(), overrides);
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

std::vector<std::pair<std::string, std::string>> SecurityProperties(const Config& config) {
  const SecurityConfig& s = config.security;
  std::vector<std::pair<std::string, std::string>> p;
  if (s.protocol == "plaintext") return p;
  p.push_back({"security.protocol", s.protocol});
  if (s.protocol.rfind("sasl_", 0) == 0) {
    p.push_back({"sasl.mechanisms", s.sasl_mechanism});
    p.push_back({"sasl.username", s.sasl_username});
    p.push_back({"sasl.password", s.sasl_password});
  }
  if (s.protocol == "ssl" || s.protocol == "sasl_ssl") {
    if (!s.ssl_ca_location.empty()) p.push_back({"ssl.ca.location", s.ssl_ca_location});
    if (!s.ssl_certificate_location.empty()) {
      p.push_back({"ssl.certificate.location", s.ssl_certificate_location});
    }
    if (!s.ssl_key_location.empty()) p.push_back({"ssl.key.location", s.ssl_key_location});
    if (!s.ssl_key_password.empty()) p.push_back({"ssl.key.password", s.ssl_key_password});
    p.push_back({"ssl.endpoint.identification.algorithm", s.ssl_verify_hostname ? "https" : "none"});
  }
  return p;
}

std::map<std::string, std::string> WithSecurity(const Config& config,
                                                const std::map<std::string, std::string>& user) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : SecurityProperties(config)) out[k] = v;
  for (const auto& [k, v] : user) out[k] = v;
  return out;
}

bool ExactlyOnce(const Config& config) { return config.delivery.mode == "exactly_once"; }

std::string TransactionalId(const Config& config) {
  if (!config.delivery.transactional_id.empty()) return config.delivery.transactional_id;
  std::string instance = config.delivery.instance_id;
  if (instance.empty()) {
    const char* env = std::getenv("NLPFLOW_INSTANCE_ID");
    if (env != nullptr) instance = env;
  }
  if (instance.empty()) {
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) == 0) instance = host;
  }
  if (instance.empty()) instance = "0";
  return config.kafka.group_id + "-" + instance;
}

std::string DumpConfig(const Config& c) {
  Config copy = c;  // Sections() takes the fields' addresses
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& section : Sections(&copy)) section.Dump(out);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace nlpflow
