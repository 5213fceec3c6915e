// The start-up error for a failed authentication (AuthFailureMessage): the
// note about SCRAM and old librdkafka versions appears exactly when it
// applies. No broker needed.
#include "connectors/kafka/rdkafka_util.h"

#include <gtest/gtest.h>

#include <string>

namespace nlpflow::kafka_internal {
namespace {

// librdkafka's line when Kafka rejects a SCRAM login (the wrong password, or
// any password from librdkafka < 2.6.1 against Kafka 4.x).
constexpr char kScramReason[] =
    "sasl_plaintext://127.0.0.1:9093/bootstrap: SASL authentication error: "
    "Authentication failed during authentication due to invalid credentials "
    "with SASL mechanism SCRAM-SHA-256 (after 3ms in state AUTH_REQ)";
constexpr char kPlainReason[] =
    "sasl_plaintext://127.0.0.1:9093/bootstrap: SASL authentication error: "
    "Authentication failed: Invalid username or password (after 2ms in state "
    "AUTH_REQ)";
constexpr char kSslReason[] =
    "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: "
    "error:0A000086:SSL routines::certificate verify failed";

constexpr int kLibrdkafka2_0_2 = 0x020002ff;
constexpr int kLibrdkafka2_6_0 = 0x020600ff;
constexpr int kLibrdkafka2_6_1 = 0x020601ff;
constexpr int kLibrdkafka2_10_0 = 0x020a00ff;

TEST(AuthFailureMessageTest, ScramWithOldLibrdkafkaGetsTheNote) {
  EXPECT_EQ(AuthFailureMessage("127.0.0.1:9093", kScramReason, "SCRAM-SHA-256",
                               kLibrdkafka2_0_2),
            std::string("Kafka authentication at '127.0.0.1:9093' failed: ") +
                kScramReason +
                " (note: SCRAM against Kafka >= 4.0 needs librdkafka >= "
                "2.6.1; linked: 2.0.2)");
  EXPECT_NE(AuthFailureMessage("b:1", kScramReason, "SCRAM-SHA-512",
                               kLibrdkafka2_6_0)
                .find("(note: SCRAM against Kafka >= 4.0 needs librdkafka >= "
                      "2.6.1; linked: 2.6.0)"),
            std::string::npos);
}

TEST(AuthFailureMessageTest, NoNoteFromLibrdkafka2_6_1On) {
  const std::string plain =
      std::string("Kafka authentication at 'b:1' failed: ") + kScramReason;
  EXPECT_EQ(AuthFailureMessage("b:1", kScramReason, "SCRAM-SHA-256",
                               kLibrdkafka2_6_1),
            plain);
  EXPECT_EQ(AuthFailureMessage("b:1", kScramReason, "SCRAM-SHA-256",
                               kLibrdkafka2_10_0),
            plain);
  // A pre-release of 2.6.1 (low byte below 0xff) has the fix too.
  EXPECT_EQ(AuthFailureMessage("b:1", kScramReason, "SCRAM-SHA-256",
                               0x02060101),
            plain);
}

TEST(AuthFailureMessageTest, NoNoteForOtherMechanismsOrFailures) {
  EXPECT_EQ(AuthFailureMessage("b:1", kPlainReason, "PLAIN", kLibrdkafka2_0_2),
            std::string("Kafka authentication at 'b:1' failed: ") +
                kPlainReason);
  // A TLS failure on a SCRAM setup is not the nonce problem.
  EXPECT_EQ(AuthFailureMessage("b:1", kSslReason, "SCRAM-SHA-512",
                               kLibrdkafka2_0_2),
            std::string("Kafka authentication at 'b:1' failed: ") + kSslReason);
  EXPECT_EQ(AuthFailureMessage("b:1", kSslReason, "GSSAPI", kLibrdkafka2_0_2),
            std::string("Kafka authentication at 'b:1' failed: ") + kSslReason);
}

}  // namespace
}  // namespace nlpflow::kafka_internal
