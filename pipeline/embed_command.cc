#include "pipeline/embed_command.h"

#include <chrono>
#include <string>
#include <thread>

#include "connectors/file/ordered_line_sink.h"
#include "nodes/batch/batcher.h"
#include "nodes/decode/decoder.h"
#include "nodes/encode/encoder.h"
#include "pipeline/serve_graph.h"
#include "pipeline/graph_options.h"

namespace nlpflow {

Result<EmbedStats> EmbedStream(const Config& config, const ModelStack& stack,
                               std::istream& in, std::ostream& out,
                               const EmbedProgressFn& progress) {
  // Reading `in` must not flush `out`. An istream flushes its tie() before
  // each read (std::cin is tied to std::cout), here on the source thread,
  // while the sink writes `out` from graph workers: two threads in one
  // stream buffer, which std::cout's is not safe for. Once the input had more
  // lines than max_in_flight, reads and writes interleaved and newlines
  // landed in the wrong places (blank lines, two results on one line, every
  // later line one off). The sink flushes `out` itself, under its lock.
  struct Untie {
    std::istream& in;
    std::ostream* tied = in.tie(nullptr);
    ~Untie() { in.tie(tied); }
  } untie{in};
  OrderedLineSink sink(&out);
  EncodeOptions encode = EncodeOptionsFrom(config, stack);
  encode.format = OutputFormat::kJson;  // one JSON object per line, always
  NLPFLOW_ASSIGN_OR_RETURN(
      auto graph, ServeGraph::Create(GraphOptionsFrom(config), DecodeOptionsFrom(config),
                                     stack.tokenizer.get(), BatcherOptionsFrom(config),
                                     stack.model.get(), encode, &sink));
  graph->Start();
  std::string line;
  uint64_t sequence = 0;
  int64_t bytes = 0;
  while (std::getline(in, line)) {
    bytes += static_cast<int64_t>(line.size()) + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    // Bound the records in flight, as the Kafka source does.
    while (graph->in_graph() >= config.pipeline.max_in_flight) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    auto r = std::make_shared<Record>();
    r->sequence = sequence;
    r->coords = {"stdin", 0, static_cast<int64_t>(sequence)};
    r->payload = std::move(line);
    r->times.arrived_us = NowMicros();
    graph->Put(std::move(r));
    ++sequence;
    if (progress) progress(static_cast<int64_t>(sequence), bytes);
  }
  // Offline: no deadline worth giving up on; wait for every line.
  NLPFLOW_RETURN_IF_ERROR(graph->Drain(/*timeout_ms=*/24LL * 3600 * 1000));
  out.flush();
  if (sink.written() != static_cast<int64_t>(sequence)) {
    return Status::Internal("wrote " + std::to_string(sink.written()) + " of " +
                            std::to_string(sequence) + " lines");
  }
  return EmbedStats{static_cast<int64_t>(sequence), sink.dead_letters()};
}

}  // namespace nlpflow
