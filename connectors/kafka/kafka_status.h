// The one place where librdkafka error codes become a Status.
//
// Internal to connectors/kafka: it includes librdkafka's C header, which the
// public headers of this folder keep out.
#pragma once

#include <librdkafka/rdkafka.h>

#include <string_view>

#include "common/status.h"

namespace nlpflow {

// The StatusCode a librdkafka error maps to (kOk for NO_ERROR).
StatusCode KafkaStatusCode(rd_kafka_resp_err_t err);

// "<context>: <librdkafka's description> (<error name>)", with the mapped code.
// OK for RD_KAFKA_RESP_ERR_NO_ERROR.
Status KafkaStatus(rd_kafka_resp_err_t err, std::string_view context);

// True for offset-commit errors that go away once an ongoing rebalance or a
// coordinator move completes (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
// coordinator and transport errors): retry after polling.
bool IsRetriableCommitError(rd_kafka_resp_err_t err);

// The same for an rd_kafka_error_t (does not take ownership). OK for null.
// Uses the error's own string, which is often more precise than the code's.
Status KafkaStatus(const rd_kafka_error_t* error, std::string_view context);

}  // namespace nlpflow
