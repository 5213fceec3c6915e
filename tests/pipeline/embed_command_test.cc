// `nlpflow embed` (EmbedStream) with more input lines than
// pipeline.max_in_flight: the source thread reads while the graph's workers
// write. Its input is tied to its output, as std::cin is to std::cout, so a
// read that flushed the output from the source thread would race the sink's
// writes (lines torn, blank lines, every later line one off). The output
// stream here counts calls that overlap; the lines must be exactly one per
// input line, each carrying its own input's vector.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/embed_command.h"
#include "pipeline/model_stack.h"
#include "pipeline/offline_graph.h"

namespace nlpflow {
namespace {

// An unbuffered output buffer that keeps what it is given and counts calls
// made while another call is still in it (each call lingers a little, so an
// unsynchronized second writer is seen, not just possible).
class OverlapCountingBuf : public std::streambuf {
 public:
  std::string str() {
    std::lock_guard<std::mutex> lock(mu_);
    return data_;
  }
  int overlaps() const { return overlaps_.load(); }
  int syncs() const { return syncs_.load(); }

 protected:
  int_type overflow(int_type c) override {
    Enter();
    if (!traits_type::eq_int_type(c, traits_type::eof())) Append(std::string(1, char(c)));
    Leave();
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    Enter();
    Append(std::string(s, static_cast<size_t>(n)));
    Leave();
    return n;
  }
  int sync() override {
    Enter();
    ++syncs_;
    Leave();
    return 0;
  }

 private:
  void Enter() {
    if (active_.fetch_add(1) != 0) ++overlaps_;
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  void Leave() { active_.fetch_sub(1); }
  void Append(const std::string& s) {
    std::lock_guard<std::mutex> lock(mu_);
    data_ += s;
  }

  std::atomic<int> active_{0};
  std::atomic<int> overlaps_{0};
  std::atomic<int> syncs_{0};
  std::mutex mu_;
  std::string data_;
};

Config TestConfig(const std::vector<std::string>& sets) {
  std::vector<std::string> all = {"model.path=" + std::string(NLPFLOW_SOURCE_DIR) +
                                  "/models/all-MiniLM-L6-v2"};
  all.insert(all.end(), sets.begin(), sets.end());
  auto c = ParseConfig("", all);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.value();
}

// 24 short texts far enough apart that each vector is nearest to its own.
std::vector<std::string> Distinct() {
  const char* subjects[] = {"cats", "trains", "rain", "bread", "chess", "rivers"};
  const char* verbs[] = {"sleep all day", "run on time", "fall in spring", "need salt"};
  std::vector<std::string> texts;
  for (const char* s : subjects) {
    for (const char* v : verbs) texts.push_back(std::string(s) + " " + v);
  }
  return texts;
}

// Line i of the input is text (i * 7 + i / 24) % 24: neighbours differ, and a
// line shifted by one or more lands on another text.
size_t TextOf(int line) { return static_cast<size_t>((line * 7 + line / 24) % 24); }

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
    ab += double(a[k]) * b[k];
    aa += double(a[k]) * a[k];
    bb += double(b[k]) * b[k];
  }
  return ab / std::sqrt(aa * bb);
}

void EmbedManyLines(int lines, int max_in_flight) {
  const Config config =
      TestConfig({"pipeline.max_in_flight=" + std::to_string(max_in_flight),
                  "model.instances=2", "batch.max_batch_size=8"});
  auto stack = LoadModelStack(config);
  ASSERT_TRUE(stack.ok()) << stack.status().ToString();

  // Each distinct text's vector, computed on its own (batch of 1).
  const std::vector<std::string> texts = Distinct();
  Config alone = config;
  alone.batch.max_batch_size = 1;
  auto reference = RunOfflineGraph(alone, *stack, texts);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();

  std::string input;
  for (int i = 0; i < lines; ++i) input += texts[TextOf(i)] + "\n";
  std::istringstream in(input);
  OverlapCountingBuf buf;
  std::ostream out(&buf);
  in.tie(&out);  // as std::cin is tied to std::cout

  auto stats = EmbedStream(config, *stack, in, out);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->records, lines);
  EXPECT_EQ(stats->dead_letters, 0);
  EXPECT_EQ(in.tie(), &out) << "EmbedStream must give the input its tie back";
  EXPECT_EQ(buf.overlaps(), 0) << "the output was written by two threads at once";

  std::istringstream result(buf.str());
  std::vector<std::string> got;
  for (std::string l; std::getline(result, l);) got.push_back(l);
  ASSERT_EQ(got.size(), static_cast<size_t>(lines));
  int wrong = 0;
  for (int i = 0; i < lines; ++i) {
    const auto j = nlohmann::json::parse(got[i], nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << "line " << i << " is not one JSON object: " << got[i];
    ASSERT_EQ(j.at("source").at("offset").get<int>(), i);
    const auto e = j.at("embedding").get<std::vector<float>>();
    const auto& own = reference->rows[TextOf(i)].output;
    double best_other = -1;
    for (size_t t = 0; t < texts.size(); ++t) {
      if (t != TextOf(i)) best_other = std::max(best_other, Cosine(e, reference->rows[t].output));
    }
    const double mine = Cosine(e, own);
    if (mine < 0.9999 || mine <= best_other) ++wrong;
    EXPECT_GT(mine, 0.9999) << "line " << i;
  }
  EXPECT_EQ(wrong, 0);
}

TEST(EmbedCommandTest, MoreLinesThanMaxInFlight) { EmbedManyLines(300, 64); }

TEST(EmbedCommandTest, HundredTimesASmallMaxInFlight) { EmbedManyLines(400, 4); }

}  // namespace
}  // namespace nlpflow
