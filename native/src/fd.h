// UniqueFd: sole owner of a file descriptor, closed when the owner goes away, so no early return
// or thrown exception in the addon leaks a socket or a namespace handle.
#pragma once

#include <unistd.h>

#include <utility>

namespace ovnode {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }

  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the descriptor from now on.
  int release() { return std::exchange(fd_, -1); }

 private:
  void Reset() {
    // close() errors are not actionable here: the descriptor is released either way.
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
};

}  // namespace ovnode
