// Status and Result<T>: errors as values at every interface that can fail.
//
// A Status is either OK or carries a code and a message. The message is meant
// for a person: it names the thing that failed (a file, a config key, a
// tensor) and why. Result<T> holds either a T or a non-OK Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace nlpflow {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad config value, bad user input
  kNotFound,            // missing file, unknown topic, unknown key
  kFailedPrecondition,  // called in the wrong state
  kUnavailable,         // broker unreachable, resource temporarily gone
  kDataLoss,            // corrupt or truncated file
  kDeadlineExceeded,
  kCancelled,
  kInternal,
};

const char* StatusCodeName(StatusCode code);

// `text` with its control characters escaped ("\n", "\r", "\t", "\x00"):
// for a message that quotes bytes a user gave (a parser's report, a key, a
// tensor name), so that the error stays one line.
std::string OneLine(std::string_view text);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return Status(StatusCode::kInvalidArgument, std::move(m));
  }
  static Status NotFound(std::string m) {
    return Status(StatusCode::kNotFound, std::move(m));
  }
  static Status FailedPrecondition(std::string m) {
    return Status(StatusCode::kFailedPrecondition, std::move(m));
  }
  static Status Unavailable(std::string m) {
    return Status(StatusCode::kUnavailable, std::move(m));
  }
  static Status DataLoss(std::string m) {
    return Status(StatusCode::kDataLoss, std::move(m));
  }
  static Status DeadlineExceeded(std::string m) {
    return Status(StatusCode::kDeadlineExceeded, std::move(m));
  }
  static Status Cancelled(std::string m) {
    return Status(StatusCode::kCancelled, std::move(m));
  }
  static Status Internal(std::string m) {
    return Status(StatusCode::kInternal, std::move(m));
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: kafka.group_id: must not be empty", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-OK status. Accessing value() of an error is a bug
// (asserted in debug builds).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace nlpflow

// Returns early from the enclosing function if `expr` yields a non-OK Status.
#define NLPFLOW_RETURN_IF_ERROR(expr)            \
  do {                                           \
    ::nlpflow::Status _nlpflow_st = (expr);      \
    if (!_nlpflow_st.ok()) return _nlpflow_st;   \
  } while (0)

#define NLPFLOW_CONCAT_INNER(a, b) a##b
#define NLPFLOW_CONCAT(a, b) NLPFLOW_CONCAT_INNER(a, b)
// NLPFLOW_ASSIGN_OR_RETURN(auto x, MakeX()); assigns the value or returns the status.
#define NLPFLOW_ASSIGN_OR_RETURN(lhs, rexpr) \
  NLPFLOW_ASSIGN_OR_RETURN_IMPL(NLPFLOW_CONCAT(_nlpflow_r, __LINE__), lhs, rexpr)
#define NLPFLOW_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                  \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
