#include "train/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "util/fs.h"

namespace centerloss::trainer {
namespace {

// What a run that stopped before its first checkpoint leaves: nothing worth keeping, since a
// rerun recreates all of it.
const std::vector<std::string> kStartFiles = {"config.json", "config.json.tmp", "metrics.jsonl",
                                              "diverged.json", "diverged.json.tmp",
                                              "checkpoint.pt.tmp"};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

const std::vector<std::string> kRunFiles = {
    "checkpoint.pt", "config.json",  "metrics.jsonl", "diverged.json", "test_features.pt",
    "scatter.png",   "curves.png",   "report.md",     "openset.json",  "openset_roc.png",
    // what a crash during an atomic write leaves (util/fs.h write_file_atomic)
    "checkpoint.pt.tmp", "config.json.tmp", "diverged.json.tmp", "test_features.pt.tmp",
    "report.md.tmp", "openset.json.tmp"};

std::vector<std::string> run_files_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& name : kRunFiles) {
    if (path_exists(path_join(dir, name))) found.push_back(name);
  }
  return found;
}

void remove_files(const std::string& dir, const std::vector<std::string>& files) {
  for (const auto& name : files) {
    const std::string path = path_join(dir, name);
    if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
      throw std::runtime_error(fmt::format("cannot remove '{}': {}", path, std::strerror(errno)));
    }
  }
}

namespace {

std::runtime_error in_use(const std::string& dir, const std::string& what, const std::string& holder) {
  return std::runtime_error(fmt::format(
      "the {} '{}' is in use by another centerloss process{}: two processes must not write "
      "one folder. Wait for it to finish, or choose another --out",
      what, dir, holder.empty() ? "" : " (pid " + holder + ")"));
}

}  // namespace

void refuse_if_in_use(const std::string& dir, const std::string& what) {
  const std::string path = path_join(dir, ".lock");
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);  // never creates anything
  if (fd < 0) return;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases the probe's lock, if it got one
  if (held) {
    std::string holder;
    std::ifstream(path) >> holder;
    throw in_use(dir, what, holder);
  }
}

FolderLock::FolderLock(const std::string& dir, const std::string& what) {
  make_dirs(dir);
  const std::string path = path_join(dir, ".lock");
  // O_CLOEXEC: a child (the plotting scripts) must not inherit, and so outlive, the lock.
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    throw std::runtime_error(fmt::format("cannot write to the {} '{}': {} ({})", what, dir,
                                         std::strerror(errno), path));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::string holder;
    std::ifstream(path) >> holder;
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) throw in_use(dir, what, holder);
    throw std::runtime_error(fmt::format("cannot lock the {} '{}': {}", what, dir, std::strerror(error)));
  }
  // The holder's pid, for the message above (a failure here only loses that detail).
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0 && ::write(fd_, pid.data(), pid.size()) < 0) {
    // ignored: the lock itself is held
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

bool prepare_run_folder(const std::string& dir, StartMode mode) {
  const std::vector<std::string> found = run_files_in(dir);
  const bool has_checkpoint = is_file(path_join(dir, "checkpoint.pt"));
  const bool only_start_files = std::all_of(found.begin(), found.end(), [](const std::string& f) {
    return std::find(kStartFiles.begin(), kStartFiles.end(), f) != kStartFiles.end();
  });
  switch (mode) {
    case StartMode::Overwrite:
      remove_files(dir, found);
      return false;
    case StartMode::Resume:
      if (has_checkpoint) return true;
      throw std::invalid_argument(fmt::format(
          "--resume: '{}' has no checkpoint.pt to continue{}. Start the run with --resume auto "
          "(continues a checkpoint when there is one), --overwrite, or without --resume",
          dir, found.empty() ? "" : fmt::format(" (it holds {})", join(found))));
    case StartMode::ResumeAuto:
      if (has_checkpoint) return true;
      if (only_start_files) {  // stopped before its first checkpoint: start it again
        remove_files(dir, found);
        return false;
      }
      throw std::invalid_argument(fmt::format(
          "--resume auto: '{}' holds results ({}) but no checkpoint.pt to continue; use "
          "--overwrite to delete them and start again, or choose another --out",
          dir, join(found)));
    case StartMode::New:
      if (found.empty()) return false;
      throw std::invalid_argument(fmt::format(
          "'{}' holds another run ({}). Add --resume to continue it, --overwrite to delete its "
          "results and start again, or choose another --out",
          dir, join(found)));
  }
  return false;
}

}  // namespace centerloss::trainer
