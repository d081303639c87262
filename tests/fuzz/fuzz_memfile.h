// Fuzz input as a file for the readers that take a path: an anonymous in-memory file
// (memfd_create), named by /proc/self/fd/N, so that a fuzzing run writes nothing to disk.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

class MemFile {
 public:
  MemFile(const void* data, size_t size) : fd_(::memfd_create("centerloss-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) throw std::logic_error("memfd_create failed");
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n <= 0) throw std::logic_error("writing the in-memory file failed");
      p += n;
      size -= static_cast<size_t>(n);
    }
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};
