#include "connectors/kafka/property_check.h"

#include <librdkafka/rdkafka.h>

#include <memory>

namespace nlpflow {
namespace {

// librdkafka's reason for a bad value quotes the value; not for these.
bool MayBeSecret(const std::string& name) {
  for (const char* word : {"password", "secret", "pem", "jaas", "token", "credential"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

Status CheckLibrdkafkaProperties(const std::map<std::string, std::string>& properties,
                                 const std::string& key_prefix) {
  // Producer and consumer properties share one rd_kafka_conf_t type; a
  // property of the other kind is accepted here and only warned about by
  // rd_kafka_new, as librdkafka itself does.
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> conf(rd_kafka_conf_new(),
                                                                      &rd_kafka_conf_destroy);
  char errstr[512];
  for (const auto& [name, value] : properties) {
    errstr[0] = '\0';
    const rd_kafka_conf_res_t res =
        rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof(errstr));
    const std::string key = "config key " + key_prefix + "." + name + ": ";
    if (res == RD_KAFKA_CONF_UNKNOWN) {
      return Status::InvalidArgument(key + "unknown librdkafka property");
    }
    if (res != RD_KAFKA_CONF_OK) {
      if (MayBeSecret(name)) return Status::InvalidArgument(key + "invalid value");
      return Status::InvalidArgument(key + "invalid value: " + errstr);
    }
  }
  return Status::Ok();
}

std::string LibrdkafkaVersion() { return rd_kafka_version_str(); }

}  // namespace nlpflow
