// Checks librdkafka properties without connecting anywhere, and names the
// librdkafka in use. For `nlpflow validate-config` and `nlpflow --version`.
#pragma once

#include <map>
#include <string>

#include "common/status.h"

namespace nlpflow {

// Sets every property on a scratch librdkafka configuration of the given
// kind (a consumer's or a producer's) and destroys it. InvalidArgument,
// one line, naming the first property librdkafka does not know or refuses
// the value of: "config key <key_prefix>.<name>: unknown librdkafka property"
// or "...: invalid value: <librdkafka's reason>" (librdkafka's reason quotes
// the value, so it is left out for names that look like secrets: password,
// secret, pem, jaas, token, credential).
Status CheckLibrdkafkaProperties(const std::map<std::string, std::string>& properties,
                                 const std::string& key_prefix);

// rd_kafka_version_str() of the loaded library, e.g. "2.0.2".
std::string LibrdkafkaVersion();

}  // namespace nlpflow
