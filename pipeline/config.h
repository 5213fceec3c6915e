// The pipeline config: a YAML file parsed once into these plain structs.
//
// Every field has a default; the YAML key of a field is its section and name
// ("batch.max_batch_size"). Nodes never see YAML: pipeline/ copies what each
// node needs into that node's own options struct.
//
// Errors name the key and the problem, e.g.
//   "config key batch.max_batch_size: must be between 1 and 4096, got 0".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace nlpflow {

struct KafkaConfig {
  // "host:port[,host:port...]", or "embedded" to start an in-process
  // Kafka-protocol broker (librdkafka's mock cluster) on loopback.
  std::string bootstrap_servers = "embedded";
  // Consumer group. Instances with the same group split the partitions.
  std::string group_id = "nlpflow";
  std::string client_id = "nlpflow";
  // Empty: no Kafka at all (no broker needed); the process serves HTTP
  // inference only (http.inference must be on).
  std::vector<std::string> input_topics = {"texts"};
  std::string output_topic = "embeddings";
  // Records that cannot be processed go here, with their reason.
  std::string dead_letter_topic = "texts.dlq";
  // Partitions of the topics nlpflow creates when they are missing (output
  // and dead-letter topics; all topics on the embedded broker).
  int topic_partitions = 4;
  // Replication factor of the topics nlpflow creates.
  int topic_replication = 1;
  // How often done offsets are committed. Lower: fewer repeats after a crash;
  // higher: fewer commit requests.
  int commit_interval_ms = 200;
  // How long start-up waits for the broker before giving up with an error.
  int connect_timeout_ms = 10000;
  // librdkafka properties for both clients (e.g. OAUTHBEARER settings,
  // client.rack), applied after security.* and before consumer / producer.
  std::map<std::string, std::string> properties;
  // Extra librdkafka properties, applied last (they override nlpflow's own).
  std::map<std::string, std::string> consumer;
  std::map<std::string, std::string> producer;
};

struct InputConfig {
  // "text": the value is the UTF-8 text. "json": an object with a text field.
  // "protobuf": an nlpflow.v1.InputRecord (schemas/input_record.proto).
  std::string format = "text";
  std::string json_text_field = "text";
  // JSON: the field with a sentence pair's second text (cross-encoders, NLI,
  // rerankers); when present, the two are encoded with the tokenizer's pair
  // template. Protobuf input has a text_pair field for the same.
  std::string json_text_pair_field = "text_pair";
  std::string json_id_field = "id";
  // Larger records become dead letters ("record too large").
  int64_t max_record_bytes = 1 << 20;
};

struct TokenizerConfig {
  // Folder with tokenizer.json or vocab.txt; empty means model.path.
  std::string path;
  // Truncation in tokens, special tokens included. 0 takes the model's
  // sentence-transformers max_seq_length (256 for all-MiniLM-L6-v2), else its
  // position limit (512 for BERT).
  int max_length = 0;
};

struct BatchConfig {
  // dynamic | fixed. dynamic: a batch goes as soon as it is full, its oldest
  // record has waited max_queue_delay_us, or nothing more is on its way (a
  // lone record on an idle stream goes at once); records of similar length
  // are batched together so that little is padding. fixed (the naive
  // baseline): wait for max_batch_size records or max_queue_delay_us, in
  // arrival order, even when the stream is idle. Both send a batch only when
  // a model instance is free, so batches grow while the model is busy.
  std::string policy = "dynamic";
  // Records in one batch at most.
  int max_batch_size = 32;
  // Tokens in one batch at most, counted as records x the longest record in
  // tokens (padding included, as text-embeddings-inference counts it);
  // 0 = no limit. Bounds the time of one batch for long texts. A record
  // longer than this goes in a batch alone.
  int64_t max_batch_tokens = 0;
  // Real tokens in one batch at most: the sum of its records' token counts,
  // padding excluded (the encoder computes on real tokens only); 0 = no
  // limit. Bounds the compute time of one batch, and so how long a record
  // arriving behind a batch waits: the key for a latency budget. A record
  // longer than this goes in a batch alone.
  int64_t max_batch_real_tokens = 0;
  // Microseconds the oldest waiting record may wait for others to join its
  // batch while a model instance is free.
  int64_t max_queue_delay_us = 5000;
  // Per-record deadline in milliseconds after the record's Kafka timestamp;
  // 0 = none. A record past it when it would be batched is handled per
  // on_expired. Records without a timestamp have no deadline.
  int64_t deadline_ms = 0;
  // dead_letter: an expired record becomes a dead letter (stage batch,
  // reason "expired"; its offset is committed). process: it is processed anyway.
  std::string on_expired = "dead_letter";
  // Records whose header of this name is "high" are batched before all
  // others (normal ones then wait, up to their deadline or until backpressure
  // pauses the source); empty = one priority for all.
  std::string priority_header = "nlpflow-priority";
};

struct ModelConfig {
  // Folder with config.json and model.safetensors (Hugging Face layout).
  std::string path = "models/all-MiniLM-L6-v2";
  // Published with every result. Empty: the folder's name.
  std::string name;
  // Published with every result. Empty: a fingerprint of the weights file.
  std::string version;
  // What the model computes, and so what a result holds (README "Results"):
  // embedding | sequence-classification | token-classification, or auto:
  // the model folder's config.json "architectures" decides
  // (*ForSequenceClassification, *ForTokenClassification, else embedding;
  // with runtime torchscript, auto means embedding).
  std::string task = "auto";
  // native: nlpflow's own runtime for a Hugging Face folder (model.path is
  // the folder). torchscript: a TorchScript module (model.path is the .pt
  // file, tokenizer.path its tokenizer; model.task says what its output
  // tensor is: [batch, dim] embedding, [batch, labels] logits or
  // [batch, seq_len, labels] token logits).
  std::string runtime = "native";
  // TorchScript classifiers: the label names by id (empty: LABEL_<id>).
  // Native folders take them from config.json's id2label.
  std::vector<std::string> labels;
  // Token classification: how token labels become entities, as Hugging
  // Face's token-classification pipeline: none (one per token) | simple
  // (adjacent tokens of one entity, B-/I- tags) | first | average | max
  // (words first, labelled by their first token, their mean scores or their
  // best token).
  std::string aggregation = "simple";
  // mean | cls | max; empty: what the model folder's sentence-transformers
  // config says (mean for all-MiniLM-L6-v2), else mean.
  std::string pooling;
  bool normalize = true;
  // fp32 | int8. int8: the Linear layers run with int8 weights (per output
  // channel) and int8 activations quantized per call, on oneDNN's quantized
  // engine: faster; cosine to fp32 0.995 on average (nodes/infer/README.md).
  std::string precision = "fp32";
  // Intra-op threads per model instance (BLAS threads are set to match).
  int threads = 1;
  // Model instances running batches at the same time; they share weights.
  int instances = 1;
};

struct OutputConfig {
  // "json" or "protobuf" (schemas/result.proto). Dead letters use the same.
  std::string format = "json";
};

struct PipelineConfig {
  // Backpressure: at most this many records between source and sink; at the
  // bound the source pauses its partitions.
  int max_in_flight = 2048;
  // Clean shutdown: how long to wait for in-flight records to finish and be
  // acknowledged before giving up (their offsets are then not committed, so
  // they are read again on restart).
  int shutdown_timeout_ms = 15000;
  // Records decoded/tokenized in parallel; 0 = number of cores.
  int tokenize_concurrency = 0;
  // true: the results and dead letters of each input partition reach the
  // sink in the order the records arrived, whatever order their batches
  // finish in (a finished record waits for the earlier ones of its
  // partition). false (default): each goes as soon as it is done, which is
  // faster when batches of different lengths run on several model instances;
  // offsets are committed in order either way. With ordering on, a
  // high-priority record also waits for the earlier records of its partition.
  bool ordered_per_partition = false;
};

struct MetricsConfig {
  // "host:port" of the HTTP endpoint that serves /metrics (Prometheus text
  // format), /healthz and /readyz; see README "Metrics". Port 0 takes a free
  // port (logged: "metrics listening on 127.0.0.1:NNNNN"); "" serves nothing.
  // A port already in use stops start-up with one line naming the address.
  std::string listen = "0.0.0.0:9464";
};

// Inference over HTTP on the metrics endpoint (pipeline/http_inference.h;
// README "HTTP inference"): POST /v1/embeddings (OpenAI), /embed, /predict,
// /rerank, /tokenize (text-embeddings-inference). Requests enter the stream's
// batcher at high priority.
struct HttpConfig {
  // false: the endpoints answer 404; metrics.listen "" also turns them off.
  bool inference = true;
  // Requests being answered at once; one more is answered 429 with
  // Retry-After. Each one holds an HTTP server thread while it waits.
  int max_concurrent_requests = 64;
  // Largest request body; a larger one is answered 413.
  int64_t max_body_bytes = 2 * 1024 * 1024;
  // Longest a request waits for its results; then 503 (the records still
  // finish in the graph, their results are dropped).
  int request_timeout_ms = 30000;
};

// How nlpflow authenticates to Kafka and encrypts the connection: turned
// into librdkafka properties for the consumer, the producer and the topic
// admin (SecurityProperties), applied before kafka.consumer / kafka.producer
// (which can override any of them). Secrets never appear in validate-config's
// output (masked as "****") or in logs.
struct SecurityConfig {
  // librdkafka security.protocol: plaintext | ssl | sasl_plaintext | sasl_ssl.
  std::string protocol = "plaintext";
  // SASL (sasl_plaintext, sasl_ssl): SCRAM-SHA-256 | SCRAM-SHA-512 | PLAIN.
  std::string sasl_mechanism = "SCRAM-SHA-512";
  std::string sasl_username;
  // The password. "${NAME}" reads the environment variable NAME at start-up
  // (an error if it is not set). Or give sasl_password_file instead: the
  // file's content, without its trailing newline (e.g. a Kubernetes Secret
  // mounted as a file). Not both.
  std::string sasl_password;
  std::string sasl_password_file;
  // TLS (ssl, sasl_ssl): the CA bundle that signs the brokers' certificates
  // (empty: the system's), and for client certificates the certificate and
  // key files and the key's password ("${NAME}" or a file, as above).
  std::string ssl_ca_location;
  std::string ssl_certificate_location;
  std::string ssl_key_location;
  std::string ssl_key_password;
  std::string ssl_key_password_file;
  // Check that a broker's certificate names the host connected to.
  bool ssl_verify_hostname = true;
};

// Delivery guarantees (README, "Delivery and shutdown").
struct DeliveryConfig {
  // "at_least_once": offsets are committed after the broker acknowledged the
  // results (kafka.commit_interval_ms); a crash can repeat records.
  // "exactly_once": results, dead letters and input offsets commit together
  // in Kafka transactions; readers of the output with isolation.level
  // read_committed see every input record's result exactly once, and each
  // input partition's results in offset order.
  std::string mode = "at_least_once";
  // Exactly-once: the producer's transactional.id. Must be stable across
  // restarts of one instance and differ between instances. Empty:
  // "<kafka.group_id>-<instance_id>".
  std::string transactional_id;
  // Empty: the environment variable NLPFLOW_INSTANCE_ID, else the host name
  // (in Kubernetes the pod name).
  std::string instance_id;
  // Exactly-once: how long a transaction stays open. Results become visible
  // to read_committed readers when it commits; shorter costs more requests.
  int commit_interval_ms = 100;
  // Exactly-once: librdkafka transaction.timeout.ms. The broker aborts a
  // transaction left open longer (e.g. by a killed instance that is not
  // restarted); kafka.producer message.timeout.ms must not exceed it.
  int transaction_timeout_ms = 60000;
  // On a revoke, how long to wait for the revoked partitions' records in the
  // graph to be written and committed before letting them go.
  int revoke_timeout_ms = 10000;
};

struct LoggingConfig {
  // trace | debug | info | warn | error | off
  std::string level = "info";
  // text: "2026-12-04T19:56:19.123+00:00 info message", the local time with
  // its UTC offset. json: one object per line, {"time" (UTC, RFC 3339 with
  // milliseconds), "level", "message", and fields such as topic/partition
  // where the message has them} (pipeline/logging.h).
  std::string format = "text";
};

struct Config {
  KafkaConfig kafka;
  InputConfig input;
  TokenizerConfig tokenizer;
  BatchConfig batch;
  ModelConfig model;
  OutputConfig output;
  PipelineConfig pipeline;
  MetricsConfig metrics;
  HttpConfig http;
  DeliveryConfig delivery;
  SecurityConfig security;
  LoggingConfig logging;
};

// The librdkafka properties of config.security (secrets resolved at load),
// in the order to apply them; empty for plaintext without SASL.
std::vector<std::pair<std::string, std::string>> SecurityProperties(const Config& config);
// SecurityProperties, then kafka.properties, then `user` (kafka.consumer or
// kafka.producer) applied over them.
std::map<std::string, std::string> WithSecurity(const Config& config,
                                                const std::map<std::string, std::string>& user);

// delivery.mode == "exactly_once".
bool ExactlyOnce(const Config& config);
// The transactional id exactly-once mode uses (see DeliveryConfig).
std::string TransactionalId(const Config& config);

// metrics.listen split into host and port; InvalidArgument naming the key
// for anything but "host:port" with a port from 0 to 65535 ("[::1]:port" for
// IPv6). REQUIRES: listen is not empty.
Result<std::pair<std::string, int>> ParseListenAddress(const std::string& listen);

// Parses YAML text, applies "--set key=value" overrides (the value is parsed
// as YAML, so "a,b" stays a string and "[a, b]" is a list), fills defaults
// and validates. Unknown keys, and a key or section given twice, are errors.
// "${NAME}" and "${NAME:-default}" in any value read the environment ("$${"
// is a literal "${"). A relative path (model.path, tokenizer.path,
// security.*_location, security.*_file) written in `yaml_text` is resolved
// against `base_dir` unless that is empty; one given by an override stays
// relative to the working directory, as do the defaults.
Result<Config> ParseConfig(const std::string& yaml_text,
                           const std::vector<std::string>& overrides = {},
                           const std::string& base_dir = "");

// Reads the file, then as ParseConfig with the file's folder as base_dir.
// A missing file is NotFound naming it.
Result<Config> LoadConfig(const std::string& path,
                          const std::vector<std::string>& overrides = {});

// The resolved config as YAML, every key present. Values of keys that look
// like secrets (password, secret, key in the librdkafka maps) are masked.
std::string DumpConfig(const Config& config);

// docs/config.md: every key with its type, default, unit and effect, from
// the same field table the loader reads with (`nlpflow config-reference`).
std::string ConfigReference();

}  // namespace nlpflow
