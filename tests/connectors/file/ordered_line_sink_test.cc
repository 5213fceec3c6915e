#include "connectors/file/ordered_line_sink.h"

#include <gtest/gtest.h>

#include <sstream>

namespace nlpflow {
namespace {

RecordPtr Done(uint64_t seq, std::string encoded) {
  auto r = std::make_shared<Record>();
  r->sequence = seq;
  r->encoded = std::move(encoded);
  return r;
}

TEST(OrderedLineSinkTest, WritesInSequenceOrder) {
  std::ostringstream out;
  OrderedLineSink sink(&out);
  sink.Publish(Done(2, "c"));
  sink.Publish(Done(1, "b"));
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(sink.pending(), 2u);
  sink.PublishDeadLetter(Done(0, "ignored"), "dead-a");
  EXPECT_EQ(out.str(), "dead-a\nb\nc\n");
  sink.Publish(Done(4, "e"));
  EXPECT_EQ(sink.pending(), 1u);
  sink.Publish(Done(3, "d"));
  EXPECT_EQ(out.str(), "dead-a\nb\nc\nd\ne\n");
  EXPECT_EQ(sink.written(), 5);
  EXPECT_EQ(sink.dead_letters(), 1);
  EXPECT_EQ(sink.pending(), 0u);
}

}  // namespace
}  // namespace nlpflow
