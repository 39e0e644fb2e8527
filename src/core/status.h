// Status and Result<T>: the one error policy of the library.
// Library functions never throw and never exit; they return a Status or a Result<T> whose message names
// the file, tensor, key or flag involved. Tools turn an error into one line on stderr and a non-zero exit.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace tern {

class Status {
 public:
  Status() = default;
  static Status error(std::string message) {
    Status s;
    s.ok_ = false;
    s.message_ = std::move(message);
    return s;
  }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return message_; }

 private:
  bool ok_ = true;
  std::string message_;
};

inline Status error(std::string message) { return Status::error(std::move(message)); }

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  Status status() const { return ok() ? Status() : std::get<1>(v_); }
  const std::string& message() const {
    static const std::string empty;
    return ok() ? empty : std::get<1>(v_).message();
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tern

// Propagate an error Status from an expression that yields a Status.
#define TERN_TRY(expr)                      \
  do {                                      \
    ::tern::Status tern_try_s_ = (expr);    \
    if (!tern_try_s_.ok()) return tern_try_s_; \
  } while (0)
