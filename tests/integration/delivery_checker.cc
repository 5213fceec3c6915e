#include "tests/integration/delivery_checker.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>
#include <vector>

namespace nlpflow::testing {

std::string DeliveryReport::Summary() const {
  std::string s = "in=" + std::to_string(in) + " out=" + std::to_string(out) +
                  " dead_letters=" + std::to_string(dead_letters) +
                  " duplicates=" + std::to_string(duplicates) +
                  " missing=" + std::to_string(missing) +
                  " misrouted=" + std::to_string(misrouted) +
                  " unexpected=" + std::to_string(unexpected) +
                  " out_of_order=" + std::to_string(out_of_order);
  if (!out_of_order_by_partition.empty()) {
    s += " (by input partition:";
    for (const auto& [p, n] : out_of_order_by_partition) {
      s += " " + std::to_string(p) + ":" + std::to_string(n);
    }
    s += ")";
  }
  if (!first_missing.empty()) s += " first_missing=" + first_missing;
  return s;
}

namespace {

struct Read {
  std::string topic;
  int32_t partition;
  std::string key;
  int32_t in_partition = -1;
  int64_t in_offset = -1;
};

// The input coordinates a result or dead letter names.
void ParseSource(const std::string& value, Read* r) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return;
  const nlohmann::json* src = j.contains("source") ? &j["source"] : &j;
  if (src->contains("partition") && (*src)["partition"].is_number()) {
    r->in_partition = (*src)["partition"].get<int32_t>();
  }
  if (src->contains("offset") && (*src)["offset"].is_number()) {
    r->in_offset = (*src)["offset"].get<int64_t>();
  }
}

}  // namespace

DeliveryReport CheckDelivery(const DeliveryCheck& check, const std::string& label,
                             std::chrono::seconds timeout, std::chrono::seconds settle) {
  static int counter = 0;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  const std::map<std::string, std::string> props = {
      {"bootstrap.servers", check.bootstrap},
      {"group.id", "checker-" + std::to_string(getpid()) + "-" + std::to_string(++counter)},
      {"auto.offset.reset", "earliest"},
      {"enable.auto.commit", "false"},
      {"isolation.level", "read_committed"},
      {"fetch.wait.max.ms", "50"}};
  for (const auto& [k, v] : props) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) ADD_FAILURE() << k << ": " << err;
  }
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  DeliveryReport report;
  if (!c) {
    ADD_FAILURE() << err;
    return report;
  }
  c->subscribe({check.output_topic, check.dead_letter_topic});

  std::map<std::string, int> out_seen, dlq_seen;
  size_t good_found = 0, poison_found = 0;
  std::vector<Read> reads;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto last_new = std::chrono::steady_clock::now();
  bool complete = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (complete && std::chrono::steady_clock::now() - last_new > settle) break;
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    Read r;
    r.topic = m->topic_name();
    r.partition = m->partition();
    r.key = m->key() ? *m->key() : "";
    ParseSource(std::string(static_cast<const char*>(m->payload()), m->len()), &r);
    if (r.topic == check.output_topic) {
      if (++out_seen[r.key] == 1 && check.good_keys.count(r.key)) ++good_found;
    } else {
      if (++dlq_seen[r.key] == 1 && check.poison_keys.count(r.key)) ++poison_found;
    }
    reads.push_back(std::move(r));
    last_new = std::chrono::steady_clock::now();
    complete = good_found == check.good_keys.size() && poison_found == check.poison_keys.size();
  }
  c->close();

  report.in = static_cast<int64_t>(check.good_keys.size() + check.poison_keys.size());
  std::map<std::string, int> per_key;
  for (const auto& [k, n] : out_seen) {
    report.out += n;
    per_key[k] += n;
    if (check.poison_keys.count(k)) ++report.misrouted;
    else if (!check.good_keys.count(k)) ++report.unexpected;
  }
  for (const auto& [k, n] : dlq_seen) {
    report.dead_letters += n;
    per_key[k] += n;
    if (check.good_keys.count(k)) ++report.misrouted;
    else if (!check.poison_keys.count(k)) ++report.unexpected;
  }
  for (const auto& [k, n] : per_key) report.duplicates += n - 1;
  for (const auto& k : check.good_keys) {
    if (!out_seen.count(k)) {
      ++report.missing;
      if (report.first_missing.empty()) report.first_missing = k;
    }
  }
  for (const auto& k : check.poison_keys) {
    if (!dlq_seen.count(k)) {
      ++report.missing;
      if (report.first_missing.empty()) report.first_missing = k;
    }
  }
  // Order: per (topic, output partition, input partition) the input offsets
  // must grow in the order they were read.
  std::map<std::tuple<std::string, int32_t, int32_t>, int64_t> last;
  for (const Read& r : reads) {
    if (r.in_partition < 0) continue;
    auto key = std::make_tuple(r.topic, r.partition, r.in_partition);
    auto it = last.find(key);
    if (it != last.end() && r.in_offset <= it->second) {
      ++report.out_of_order;
      ++report.out_of_order_by_partition[r.in_partition];
    }
    last[key] = r.in_offset;
  }
  std::printf("[checker] %s: %s\n", label.c_str(), report.Summary().c_str());
  std::fflush(stdout);
  return report;
}

namespace {

// One poison record of four kinds, by index.
std::string Poison(int i) {
  switch (i % 4) {
    case 0:
      return std::string("{\"text\": \"caf\xc3\x28 au lait ") + std::to_string(i) + "\"}";
    case 1:
      return "{\"text\": \"unterminated " + std::to_string(i);
    case 2:
      return "{\"body\": \"no text field " + std::to_string(i) + "\"}";
    default:
      return "{\"text\": \"" + std::string(2100, 'x') + "\"}";
  }
}

}  // namespace

DeliveryCheck ProduceInputWithPoison(const std::string& bootstrap, const TestTopics& topics,
                                     int n) {
  DeliveryCheck check;
  check.bootstrap = bootstrap;
  check.output_topic = topics.out;
  check.dead_letter_topic = topics.dlq;
  std::vector<std::pair<std::string, std::string>> input;
  input.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (i % 100 == 50) {
      const std::string key = "p" + std::to_string(i);
      check.poison_keys.insert(key);
      input.emplace_back(key, Poison(i / 100));
    } else {
      const std::string key = "g" + std::to_string(i);
      check.good_keys.insert(key);
      input.emplace_back(key, nlohmann::json({{"text", TestText(i)}, {"id", i}}).dump());
    }
  }
  ProduceAll(bootstrap, topics.in, input);
  return check;
}

uint32_t FaultSeed() {
  const auto seed =
      static_cast<uint32_t>(EnvInt("NLPFLOW_FAULT_SEED", static_cast<int>(time(nullptr))));
  std::printf("[fault] %s: seed %u (NLPFLOW_FAULT_SEED)\n",
              ::testing::UnitTest::GetInstance()->current_test_info()->name(), seed);
  return seed;
}

void ExpectDelivered(const DeliveryReport& report, bool exactly_once) {
  EXPECT_EQ(report.missing, 0) << report.Summary();
  EXPECT_EQ(report.misrouted, 0) << report.Summary();
  EXPECT_EQ(report.unexpected, 0) << report.Summary();
  if (exactly_once) {
    EXPECT_EQ(report.duplicates, 0) << report.Summary();
    EXPECT_EQ(report.out_of_order, 0) << report.Summary();
  }
}

}  // namespace nlpflow::testing
