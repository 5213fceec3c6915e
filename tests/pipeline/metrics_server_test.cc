// The metrics endpoint on an ephemeral port, asked with httplib's client.
#include "pipeline/metrics_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <mutex>

#include "pipeline/config.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.AddCounter("t_total", "T")->Inc(3);
    auto s = MetricsServer::Start(
        "127.0.0.1:0", &registry_,
        {[this] {
           std::lock_guard<std::mutex> l(mu_);
           return health_;
         },
         [this] {
           std::lock_guard<std::mutex> l(mu_);
           return ready_;
         }});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client c("127.0.0.1", server_->port());
    return c.Get(path.c_str());
  }

  MetricsRegistry registry_;
  std::mutex mu_;
  Status health_;
  Status ready_ = Status::Unavailable("no partitions assigned");
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServerTest, ServesMetricsInTheTextFormat) {
  EXPECT_GT(server_->port(), 0);
  EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
  auto r = Get("/metrics");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "# HELP t_total T\n# TYPE t_total counter\nt_total 3\n");
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
}

TEST_F(MetricsServerTest, HealthzFollowsTheHealthCheck) {
  auto ok = Get("/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "ok\n");
  {
    std::lock_guard<std::mutex> l(mu_);
    health_ = Status::DeadlineExceeded("delivery of the result of t/0@5: timed out");
  }
  auto bad = Get("/healthz");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 503);
  EXPECT_EQ(bad->body, "delivery of the result of t/0@5: timed out\n");
}

TEST_F(MetricsServerTest, ReadyzFollowsTheReadinessCheck) {
  auto no = Get("/readyz");
  ASSERT_TRUE(no);
  EXPECT_EQ(no->status, 503);
  EXPECT_EQ(no->body, "not ready: no partitions assigned\n");
  {
    std::lock_guard<std::mutex> l(mu_);
    ready_ = Status::Ok();
  }
  auto yes = Get("/readyz");
  ASSERT_TRUE(yes);
  EXPECT_EQ(yes->status, 200);
  EXPECT_EQ(yes->body, "ready\n");
}

TEST_F(MetricsServerTest, UnknownPathIs404) {
  auto r = Get("/nope");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(MetricsServerTest, APortInUseStopsStartUpNamingTheAddress) {
  const std::string taken = "127.0.0.1:" + std::to_string(server_->port());
  auto second = MetricsServer::Start(taken, &registry_, {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(),
            "metrics.listen " + taken +
                ": cannot listen on this address (in use, or not an address of this machine)");
}

TEST(MetricsServerStartTest, MalformedAddressIsNamed) {
  MetricsRegistry registry;
  auto s = MetricsServer::Start("localhost", &registry, {});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "config key metrics.listen: expected host:port (port 0 to 65535, 0 = any free "
            "port; \"\" = off), got 'localhost'");
}

TEST(MetricsServerStartTest, StopsPromptlyWithAKeepAliveConnectionOpen) {
  MetricsRegistry registry;
  auto s = MetricsServer::Start("127.0.0.1:0", &registry, {});
  ASSERT_TRUE(s.ok());
  httplib::Client c("127.0.0.1", (*s)->port());
  c.set_keep_alive(true);
  ASSERT_TRUE(c.Get("/metrics"));
  const auto start = std::chrono::steady_clock::now();
  s->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(ListenAddressTest, Parses) {
  EXPECT_EQ(ParseListenAddress("0.0.0.0:9464").value(), std::make_pair(std::string("0.0.0.0"), 9464));
  EXPECT_EQ(ParseListenAddress("[::1]:0").value(), std::make_pair(std::string("::1"), 0));
  for (const char* bad : {"9464", ":9464", "host:", "host:65536", "host:-1", "::1:80", "h:8x"}) {
    auto r = ParseListenAddress(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.status().message(), StartsWith("config key metrics.listen: expected host:port"));
  }
}

TEST(ListenAddressTest, ConfigKey) {
  EXPECT_EQ(ParseConfig("").value().metrics.listen, "0.0.0.0:9464");
  EXPECT_EQ(ParseConfig("", {"metrics.listen=\"\""}).value().metrics.listen, "");
  auto bad = ParseConfig("metrics:\n  listen: 'x:y'\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("config key metrics.listen: expected host:port"));
}

}  // namespace
}  // namespace nlpflow
