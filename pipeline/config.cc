#include "pipeline/config.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <type_traits>

namespace nlpflow {
namespace {

// Maps whose keys are free-form (librdkafka property names contain dots).
bool IsFreeFormMap(const std::string& section, const std::string& field) {
  return section == "kafka" &&
         (field == "consumer" || field == "producer" || field == "properties");
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

// Expands "${NAME}" and "${NAME:-default}" in `text` from the environment
// (the default when NAME is unset or empty, as in the shell); "$${" is a
// literal "${". An unset NAME without a default is an error naming `key` and
// NAME, never the text (it may be a secret).
Status ExpandEnv(const std::string& key, const std::string& text, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      *out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      *out += text[i++];
      continue;
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string::npos) return KeyError(key, "unterminated ${ (write $${ for a literal one)");
    const std::string inner = text.substr(i + 2, close - i - 2);
    const size_t sep = inner.find(":-");
    const std::string name = inner.substr(0, sep);
    const bool valid_name =
        !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
        name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
            std::string::npos;
    if (!valid_name) {
      return KeyError(key, "'${" + inner + "}' is not ${NAME} or ${NAME:-default}");
    }
    const char* env = std::getenv(name.c_str());
    if (env != nullptr && *env != '\0') {
      *out += env;
    } else if (sep != std::string::npos) {
      *out += inner.substr(sep + 2);
    } else if (env != nullptr) {
      *out += env;  // set but empty, no default: empty, as the shell does
    } else {
      return KeyError(key, "environment variable " + name + " is not set");
    }
    i = close + 1;
  }
  return Status::Ok();
}

// A scalar's text with the environment expanded (see ExpandEnv).
Status ScalarText(const YAML::Node& node, const std::string& key, std::string* out) {
  return ExpandEnv(key, node.Scalar(), out);
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
  std::string text;
  NLPFLOW_RETURN_IF_ERROR(ScalarText(node, key, &text));
  if constexpr (std::is_same_v<T, std::string>) {
    *out = std::move(text);
  } else {
    try {
      *out = YAML::Node(text).as<T>();
    } catch (const YAML::Exception&) {
      return KeyError(key, std::string("expected ") + expected + ", got '" + text + "'");
    }
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
    std::string text;
    NLPFLOW_RETURN_IF_ERROR(ScalarText(n, key, &text));
    out->push_back(std::move(text));
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
    std::string text;
    NLPFLOW_RETURN_IF_ERROR(ScalarText(item, key, &text));
    out->push_back(std::move(text));
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
    NLPFLOW_RETURN_IF_ERROR(ScalarText(kv.second, key + "." + name, &(*out)[name]));
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

// A loaded string as the loader reads it back: every literal "${" written
// "$${", so that a dump loads to the same config (found by config_fuzz).
std::string EscapeForDump(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v.compare(i, 2, "${") == 0) out += '$';
    out += v[i];
  }
  return out;
}

// Writes one field's value for DumpConfig.
template <typename T>
void EmitField(YAML::Emitter& out, const T& v) {
  out << v;
}
void EmitField(YAML::Emitter& out, const std::string& v) { out << EscapeForDump(v); }
void EmitField(YAML::Emitter& out, const std::vector<std::string>& v) {
  std::vector<std::string> escaped;
  for (const std::string& s : v) escaped.push_back(EscapeForDump(s));
  out << YAML::Flow << escaped;
}
void EmitField(YAML::Emitter& out, const std::map<std::string, std::string>& m) {
  out << YAML::BeginMap;
  for (const auto& [k, v] : m) {
    out << YAML::Key << k << YAML::Value << (LooksSecret(k) ? "****" : EscapeForDump(v));
  }
  out << YAML::EndMap;
}

// A secret field: its value is masked when dumped (if set), and left out when
// it was read from its *_file field (the dump names the file; writing both
// would not load: "set either it or ..._file").
struct Secret {
  std::string* value;
  const std::string* file = nullptr;
};
Status ReadField(const YAML::Node& n, const std::string& key, Secret* out) {
  return Convert(n, key, "a string", out->value);
}
void EmitField(YAML::Emitter& out, const Secret& v) {
  const bool from_file = v.file != nullptr && !v.file->empty();
  out << (v.value->empty() || from_file ? std::string() : std::string("****"));
}

// The type of a field as the reference names it.
const char* TypeName(const std::string*) { return "string"; }
const char* TypeName(const int*) { return "integer"; }
const char* TypeName(const int64_t*) { return "integer"; }
const char* TypeName(const bool*) { return "bool"; }
const char* TypeName(const std::vector<std::string>*) { return "list of strings"; }
const char* TypeName(const std::map<std::string, std::string>*) { return "map"; }

// The unit of a field, from its name's suffix (STYLE: a unit in the name).
std::string UnitOf(const std::string& field) {
  auto ends = [&](const char* suffix) {
    const std::string x(suffix);
    return field.size() > x.size() && field.compare(field.size() - x.size(), x.size(), x) == 0;
  };
  if (ends("_ms")) return "milliseconds";
  if (ends("_us")) return "microseconds";
  if (ends("_bytes")) return "bytes";
  if (ends("_tokens")) return "tokens";
  return "";
}

// One row of the config reference (ConfigReference).
struct FieldDoc {
  std::string key;
  std::string type;
  std::string default_value;
  std::string unit;
  std::string effect;
};

// One section: its fields by name, each with the sentence that says what it
// does. Reading a section rejects unknown keys; dumping writes every field,
// in the order they were declared; the reference lists them in that order.
class Section {
 public:
  explicit Section(std::string name) : name_(std::move(name)) {}

  template <typename T>
  Section& Field(const std::string& field, T* target, const char* effect) {
    readers_[field] = [key = name_ + "." + field, target](const YAML::Node& n) {
      return ReadField(n, key, target);
    };
    fields_.push_back({field, TypeName(target), effect,
                       [target](YAML::Emitter& out) { EmitField(out, *target); }});
    return *this;
  }

  // A file or folder: a relative value given in the config file is resolved
  // against the file's folder (see ParseConfig).
  Section& PathField(const std::string& field, std::string* target, const char* effect) {
    Field(field, target, effect);
    fields_.back().type = "path";
    paths_[field] = target;
    return *this;
  }

  // `file`: the field that may hold it instead (its content is read into
  // `target` at validation), or null.
  Section& SecretField(const std::string& field, std::string* target, const char* effect,
                       const std::string* file = nullptr) {
    readers_[field] = [key = name_ + "." + field, target](const YAML::Node& n) {
      Secret s{target};
      return ReadField(n, key, &s);
    };
    fields_.push_back({field, "string (secret)", effect, [target, file](YAML::Emitter& out) {
                         EmitField(out, Secret{target, file});
                       }});
    return *this;
  }

  void Dump(YAML::Emitter& out) const {
    out << YAML::Key << name_ << YAML::Value << YAML::BeginMap;
    for (const auto& f : fields_) {
      out << YAML::Key << f.field << YAML::Value;
      f.emit(out);
    }
    out << YAML::EndMap;
  }

  // The reference rows, with the current values as the defaults.
  std::vector<FieldDoc> Docs() const {
    std::vector<FieldDoc> docs;
    for (const auto& f : fields_) {
      YAML::Emitter value;
      value << YAML::Flow;
      f.emit(value);
      docs.push_back({name_ + "." + f.field, f.type, value.c_str(), UnitOf(f.field), f.effect});
    }
    return docs;
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

  // The path fields that `node` (this section in the file) sets, as keys.
  std::set<std::string> PathKeysIn(const YAML::Node& node) const {
    std::set<std::string> keys;
    if (!node || !node.IsMap()) return keys;
    for (const auto& [field, unused] : paths_) {
      if (node[field]) keys.insert(name_ + "." + field);
    }
    return keys;
  }

  // Makes the relative values of the path fields in `keys` relative to
  // `base_dir` instead of the working directory.
  void ResolvePaths(const std::set<std::string>& keys, const std::string& base_dir) const {
    for (const auto& [field, target] : paths_) {
      if (!keys.count(name_ + "." + field) || target->empty()) continue;
      const std::filesystem::path p(*target);
      if (p.is_absolute()) continue;
      *target = (std::filesystem::path(base_dir) / p).lexically_normal().string();
    }
  }

  const std::string& name() const { return name_; }

 private:
  struct FieldEntry {
    std::string field;
    std::string type;
    std::string effect;
    std::function<void(YAML::Emitter&)> emit;
  };

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
  std::vector<FieldEntry> fields_;
  std::map<std::string, std::string*> paths_;
};

// The field table: every key, its target and its effect. The defaults,
// types and units in docs/config.md come from here (ConfigReference); the
// comments in config.h say more.
std::vector<Section> Sections(Config* c) {
  std::vector<Section> s;
  s.emplace_back("kafka");
  s.back()
      .Field("bootstrap_servers", &c->kafka.bootstrap_servers,
             "Brokers, host:port[,host:port...]; \"embedded\" starts an in-process "
             "Kafka-protocol broker on loopback.")
      .Field("group_id", &c->kafka.group_id,
             "Consumer group; instances with the same group split the partitions.")
      .Field("client_id", &c->kafka.client_id, "client.id of the consumer and the producer.")
      .Field("input_topics", &c->kafka.input_topics, "Topics to read texts from.")
      .Field("output_topic", &c->kafka.output_topic, "Topic the results are written to.")
      .Field("dead_letter_topic", &c->kafka.dead_letter_topic,
             "Topic for records that cannot be processed, with their reason.")
      .Field("topic_partitions", &c->kafka.topic_partitions,
             "Partitions of the topics nlpflow creates when missing.")
      .Field("topic_replication", &c->kafka.topic_replication,
             "Replication factor of the topics nlpflow creates.")
      .Field("commit_interval_ms", &c->kafka.commit_interval_ms,
             "How often done offsets are committed: lower repeats fewer records after a crash, "
             "higher sends fewer commits.")
      .Field("connect_timeout_ms", &c->kafka.connect_timeout_ms,
             "How long start-up waits for the broker before failing.")
      .Field("properties", &c->kafka.properties,
             "librdkafka properties for both the consumer and the producer (e.g. "
             "sasl.oauthbearer.*, client.rack); applied after security.*, before "
             "kafka.consumer / kafka.producer.")
      .Field("consumer", &c->kafka.consumer,
             "librdkafka properties for the consumer only, applied last.")
      .Field("producer", &c->kafka.producer,
             "librdkafka properties for the producer (and topic admin) only, applied last.");
  s.emplace_back("input");
  s.back()
      .Field("format", &c->input.format,
             "text (the value is UTF-8 text), json (an object with a text field) or protobuf "
             "(nlpflow.v1.InputRecord).")
      .Field("json_text_field", &c->input.json_text_field, "json: the field holding the text.")
      .Field("json_text_pair_field", &c->input.json_text_pair_field,
             "json: the field holding a sentence pair's second text (cross-encoders, NLI); "
             "protobuf input has InputRecord.text_pair.")
      .Field("json_id_field", &c->input.json_id_field,
             "json: the field holding the record's id, copied into the result.")
      .Field("max_record_bytes", &c->input.max_record_bytes,
             "Larger records become dead letters (\"record too large\").");
  s.emplace_back("tokenizer");
  s.back()
      .PathField("path", &c->tokenizer.path,
                 "Folder with tokenizer.json or vocab.txt; empty: model.path.")
      .Field("max_length", &c->tokenizer.max_length,
             "Truncation in tokens, special tokens included; 0: the model's own "
             "(max_seq_length, else its position limit).");
  s.emplace_back("batch");
  s.back()
      .Field("policy", &c->batch.policy,
             "dynamic (sends when full, at max_queue_delay_us or when nothing more is coming; "
             "groups similar lengths) or fixed (waits for a full batch or the delay).")
      .Field("max_batch_size", &c->batch.max_batch_size, "Records in one batch at most.")
      .Field("max_batch_tokens", &c->batch.max_batch_tokens,
             "Records x longest record in one batch at most (padding included); 0: no limit.")
      .Field("max_batch_real_tokens", &c->batch.max_batch_real_tokens,
             "Sum of the records' tokens in one batch at most (padding excluded); 0: no limit. "
             "Bounds how long a record waits behind a running batch.")
      .Field("max_queue_delay_us", &c->batch.max_queue_delay_us,
             "How long the oldest waiting record may wait for others while a model instance "
             "is free.")
      .Field("deadline_ms", &c->batch.deadline_ms,
             "Per-record deadline after its Kafka timestamp; 0: none.")
      .Field("on_expired", &c->batch.on_expired,
             "dead_letter (stage batch, reason expired) or process, for a record past its "
             "deadline.")
      .Field("priority_header", &c->batch.priority_header,
             "Records whose header of this name is \"high\" are batched first; empty: one "
             "priority.");
  s.emplace_back("model");
  s.back()
      .PathField("path", &c->model.path,
                 "Folder with config.json and model.safetensors (Hugging Face layout); with "
                 "runtime torchscript, the .pt file.")
      .Field("name", &c->model.name, "Published with every result; empty: the folder's name.")
      .Field("version", &c->model.version,
             "Published with every result; empty: a fingerprint of the weights file.")
      .Field("task", &c->model.task,
             "auto (config.json's architectures: *ForSequenceClassification, "
             "*ForTokenClassification, else embedding), embedding, sequence-classification or "
             "token-classification; with runtime torchscript, what the module's output is.")
      .Field("runtime", &c->model.runtime,
             "native (a Hugging Face folder) or torchscript (model.path is a .pt file, "
             "tokenizer.path its tokenizer).")
      .Field("labels", &c->model.labels,
             "TorchScript classifiers: label names by id; empty: LABEL_<id>.")
      .Field("aggregation", &c->model.aggregation,
             "Token classification: none, simple, first, average or max, as Hugging Face's "
             "token-classification pipeline.")
      .Field("pooling", &c->model.pooling,
             "mean, cls or max; empty: the model folder's sentence-transformers setting, else "
             "mean.")
      .Field("normalize", &c->model.normalize, "Scale embeddings to unit length.")
      .Field("precision", &c->model.precision,
             "fp32 or int8 (int8 weights and activations on oneDNN: faster, cosine to fp32 "
             "about 0.995).")
      .Field("threads", &c->model.threads, "Intra-op threads per model instance.")
      .Field("instances", &c->model.instances,
             "Model instances running batches at the same time; they share weights.");
  s.emplace_back("output");
  s.back().Field("format", &c->output.format,
                 "json or protobuf (schemas/result.proto), for results and dead letters.");
  s.emplace_back("pipeline");
  s.back()
      .Field("max_in_flight", &c->pipeline.max_in_flight,
             "Records between source and sink at most; at the bound the source pauses.")
      .Field("shutdown_timeout_ms", &c->pipeline.shutdown_timeout_ms,
             "On stop, how long to wait for in-flight records to be acknowledged.")
      .Field("tokenize_concurrency", &c->pipeline.tokenize_concurrency,
             "Records decoded and tokenized in parallel; 0: the number of cores.")
      .Field("ordered_per_partition", &c->pipeline.ordered_per_partition,
             "true: each input partition's results leave in input order.");
  s.emplace_back("metrics");
  s.back().Field("listen", &c->metrics.listen,
                 "host:port of /metrics, /healthz and /readyz; port 0: a free port; \"\": off.");
  s.emplace_back("http");
  s.back()
      .Field("inference", &c->http.inference,
             "true: POST /v1/embeddings, /embed, /predict, /rerank, /tokenize on metrics.listen.")
      .Field("max_concurrent_requests", &c->http.max_concurrent_requests,
             "Inference requests answered at once; one more gets 429 with Retry-After.")
      .Field("max_body_bytes", &c->http.max_body_bytes,
             "Largest request body; a larger one gets 413.")
      .Field("request_timeout_ms", &c->http.request_timeout_ms,
             "Longest a request waits for its results; then 503.");
  s.emplace_back("delivery");
  s.back()
      .Field("mode", &c->delivery.mode,
             "at_least_once (commit after acknowledgement) or exactly_once (Kafka "
             "transactions).")
      .Field("transactional_id", &c->delivery.transactional_id,
             "exactly_once: the producer's transactional.id; empty: "
             "<kafka.group_id>-<instance_id>.")
      .Field("instance_id", &c->delivery.instance_id,
             "Empty: $NLPFLOW_INSTANCE_ID, else the host name.")
      .Field("commit_interval_ms", &c->delivery.commit_interval_ms,
             "exactly_once: how long a transaction stays open.")
      .Field("transaction_timeout_ms", &c->delivery.transaction_timeout_ms,
             "exactly_once: librdkafka transaction.timeout.ms.")
      .Field("revoke_timeout_ms", &c->delivery.revoke_timeout_ms,
             "On a revoke, how long to wait for the revoked partitions' records.");
  s.emplace_back("security");
  s.back()
      .Field("protocol", &c->security.protocol,
             "plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka security.protocol).")
      .Field("sasl_mechanism", &c->security.sasl_mechanism,
             "SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN.")
      .Field("sasl_username", &c->security.sasl_username, "SASL user name.")
      .SecretField("sasl_password", &c->security.sasl_password,
                   "SASL password; write ${NAME} to read it from the environment.",
                   &c->security.sasl_password_file)
      .PathField("sasl_password_file", &c->security.sasl_password_file,
                 "File holding the SASL password (instead of sasl_password).")
      .PathField("ssl_ca_location", &c->security.ssl_ca_location,
                 "CA bundle of the brokers' certificates; empty: the system's.")
      .PathField("ssl_certificate_location", &c->security.ssl_certificate_location,
                 "Client certificate.")
      .PathField("ssl_key_location", &c->security.ssl_key_location, "Client certificate's key.")
      .SecretField("ssl_key_password", &c->security.ssl_key_password,
                   "The key's password; ${NAME} reads the environment.",
                   &c->security.ssl_key_password_file)
      .PathField("ssl_key_password_file", &c->security.ssl_key_password_file,
                 "File holding the key's password.")
      .Field("ssl_verify_hostname", &c->security.ssl_verify_hostname,
             "Check that a broker's certificate names the host connected to.");
  s.emplace_back("logging");
  s.back()
      .Field("level", &c->logging.level, "trace, debug, info, warn, error or off.")
      .Field("format", &c->logging.format,
             "text (a line with the local time and its UTC offset) or json (one object per "
             "line, time in UTC RFC 3339).");
  return s;
}

// A key given twice in one map (a section given twice, a field given twice
// in a section, a property twice in a map) is an error: YAML parsers keep
// one of them silently, and which one is not what the reader of the file
// expects. A key that is not a scalar ("? [a, b]: c") is an error too.
// Lines are 1-based.
Status CheckNoDuplicateKeys(const YAML::Node& node, const std::string& path) {
  if (node.IsSequence()) {
    for (const auto& item : node) NLPFLOW_RETURN_IF_ERROR(CheckNoDuplicateKeys(item, path));
    return Status::Ok();
  }
  if (!node.IsMap()) return Status::Ok();
  std::map<std::string, int> lines;
  for (const auto& kv : node) {
    const int line = kv.first.Mark().line + 1;
    if (!kv.first.IsScalar()) {
      return KeyError(path.empty() ? "(top level)" : path,
                      "a key must be a name, got " + Describe(kv.first) +
                          (line > 0 ? " (line " + std::to_string(line) + ")" : ""));
    }
    const std::string name = kv.first.Scalar();
    const std::string key = path.empty() ? name : path + "." + name;
    auto [it, inserted] = lines.emplace(name, line);
    if (!inserted) {
      return KeyError(key, std::string(path.empty() ? "section" : "key") + " given twice (lines " +
                               std::to_string(it->second) + " and " + std::to_string(line) + ")");
    }
    NLPFLOW_RETURN_IF_ERROR(CheckNoDuplicateKeys(kv.second, key));
  }
  return Status::Ok();
}

// Applies one --set; `key` is set to the key it set ("section.field").
Status ApplyOverride(YAML::Node& root, const std::string& assignment, std::string* set_key) {
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
  *set_key = key;
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
  NLPFLOW_RETURN_IF_ERROR(CheckNoDuplicateKeys(value, key));
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

// Resolves a *_file secret into `value` ("${NAME}" was expanded when the
// field was read). The errors name the key and the file, never the secret.
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
  if (c.kafka.input_topics.empty() && (!c.http.inference || c.metrics.listen.empty())) {
    return KeyError("kafka.input_topics",
                    "is empty (HTTP only), but HTTP inference is off (http.inference, "
                    "metrics.listen): nothing to serve");
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
  if (!IsOneOf(c.model.task,
               {"auto", "embedding", "sequence-classification", "token-classification"})) {
    return KeyError("model.task",
                    "must be auto, embedding, sequence-classification or token-classification, "
                    "got '" + c.model.task + "'");
  }
  if (!IsOneOf(c.model.runtime, {"native", "torchscript"})) {
    return KeyError("model.runtime", "must be native or torchscript, got '" + c.model.runtime + "'");
  }
  if (!IsOneOf(c.model.aggregation, {"none", "simple", "first", "average", "max"})) {
    return KeyError("model.aggregation", "must be none, simple, first, average or max, got '" +
                                             c.model.aggregation + "'");
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
  NLPFLOW_RETURN_IF_ERROR(
      InRange("http.max_concurrent_requests", c.http.max_concurrent_requests, 1, 4096));
  NLPFLOW_RETURN_IF_ERROR(
      InRange("http.max_body_bytes", c.http.max_body_bytes, 1024, int64_t{1} << 30));
  NLPFLOW_RETURN_IF_ERROR(
      InRange("http.request_timeout_ms", c.http.request_timeout_ms, 1, 3600000));
  if (!IsOneOf(c.delivery.mode, {"at_least_once", "exactly_once"})) {
    return KeyError("delivery.mode", "must be at_least_once or exactly_once, got '" +
                                         c.delivery.mode + "'");
  }
  NLPFLOW_RETURN_IF_ERROR(InRange("delivery.commit_interval_ms", c.delivery.commit_interval_ms, 1, 600000));
  NLPFLOW_RETURN_IF_ERROR(InRange("delivery.transaction_timeout_ms", c.delivery.transaction_timeout_ms, 1000, 900000));
  NLPFLOW_RETURN_IF_ERROR(InRange("delivery.revoke_timeout_ms", c.delivery.revoke_timeout_ms, 0, 600000));
  if (c.delivery.mode == "exactly_once") {
    std::map<std::string, std::string> producer = c.kafka.properties;
    for (const auto& [k, v] : c.kafka.producer) producer[k] = v;
    auto mt = producer.find("message.timeout.ms");
    if (mt != producer.end()) {
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
      if (c.kafka.producer.count(own) || c.kafka.properties.count(own)) {
        return KeyError(std::string("kafka.producer.") + own,
                        "is set by delivery.* in exactly_once mode; remove it");
      }
    }
  }
  if (!IsOneOf(c.logging.level, {"trace", "debug", "info", "warn", "error", "off"})) {
    return KeyError("logging.level", "must be trace, debug, info, warn, error or off, got '" +
                                         c.logging.level + "'");
  }
  if (!IsOneOf(c.logging.format, {"text", "json"})) {
    return KeyError("logging.format", "must be text or json, got '" + c.logging.format + "'");
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
                           const std::vector<std::string>& overrides,
                           const std::string& base_dir) {
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
  NLPFLOW_RETURN_IF_ERROR(CheckNoDuplicateKeys(root, ""));

  Config config;
  const std::vector<Section> sections = Sections(&config);
  // Paths written in the file are relative to the file; those from --set and
  // the defaults stay relative to the working directory.
  std::set<std::string> file_paths;
  for (const auto& s : sections) {
    if (root[s.name()]) file_paths.merge(s.PathKeysIn(root[s.name()]));
  }
  for (const auto& o : overrides) {
    std::string key;
    NLPFLOW_RETURN_IF_ERROR(ApplyOverride(root, o, &key));
    file_paths.erase(key);
  }

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
  if (!base_dir.empty()) {
    for (const auto& s : sections) s.ResolvePaths(file_paths, base_dir);
  }
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
  std::string base_dir = std::filesystem::path(path).parent_path().string();
  if (base_dir.empty()) base_dir = ".";
  auto config = ParseConfig(text.str(), overrides, base_dir);
  if (!config.ok()) {
    // Messages quote the file (yaml-cpp's own, keys, values): keep them one line.
    return Status(config.status().code(), OneLine(config.status().WithContext(path).message()));
  }
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
  for (const auto& [k, v] : config.kafka.properties) out[k] = v;
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

std::string ConfigReference() {
  Config defaults;
  std::string out =
      "# Config reference\n\n"
      "Generated from the field table in pipeline/config.cc by `nlpflow config-reference`;\n"
      "tests/pipeline/config_test.cc fails when this file is stale. pipeline/config.h says\n"
      "more about each key.\n\n"
      "- Every string value may use `${NAME}` and `${NAME:-default}` (the environment;\n"
      "  `$${` is a literal `${`); an unset NAME without a default is an error.\n"
      "- A relative path (the keys of type path) written in the config file is resolved\n"
      "  against the file's folder; one given with `--set`, and the defaults, against the\n"
      "  working directory.\n"
      "- A section or a key given twice is an error, as is an unknown one.\n";
  for (const auto& section : Sections(&defaults)) {
    out += "\n## " + section.name() + "\n\n| key | type | default | unit | effect |\n|---|---|---|---|---|\n";
    for (const FieldDoc& d : section.Docs()) {
      std::string effect = d.effect;
      for (size_t i = 0; (i = effect.find('|', i)) != std::string::npos; i += 2) {
        effect.replace(i, 1, "\\|");
      }
      out += "| `" + d.key + "` | " + d.type + " | `" + d.default_value + "` | " + d.unit +
             " | " + effect + " |\n";
    }
  }
  return out;
}

}  // namespace nlpflow
