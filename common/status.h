#pragma once
// Errors on the data path are values: stores, parsers and the router return Status or Result<T>.
// Exceptions are reserved for start-up and config loading and never cross an Asio handler.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace lockshift {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // the request is malformed (bad JSON, bad number, key too long)
  kUnavailable,      // the store cannot be reached or is closed
  kStoreFull,        // the store has no room (LMDB map full)
  kTimeout,          // the store did not answer in time
  kIoError,          // the store failed while reading or writing
  kInternal,         // a bug: an invariant did not hold
  kUnsupported,      // the store does not offer this (records on a store that keeps none)
};

const char* errorCodeName(ErrorCode code);

// Status is either OK or an error code with a human-readable message.
// Thread-safety: a value type; distinct instances may be used from any thread.
class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
  static Status unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Status storeFull(std::string m) { return {ErrorCode::kStoreFull, std::move(m)}; }
  static Status timeout(std::string m) { return {ErrorCode::kTimeout, std::move(m)}; }
  static Status ioError(std::string m) { return {ErrorCode::kIoError, std::move(m)}; }
  static Status internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  static Status unsupported(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }

  bool isOk() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return isOk(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "unavailable: connection refused"
  std::string toString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).isOk()); }  // NOLINT

  bool isOk() const { return v_.index() == 0; }
  explicit operator bool() const { return isOk(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<1>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lockshift
