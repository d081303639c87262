// Who may write a run folder, and when: one process at a time (a lock), and never over another
// run's results unless asked (--resume to continue it, --overwrite to start again).
#pragma once

#include <string>
#include <vector>

namespace centerloss::trainer {

// How `train` treats what is already in its folder.
enum class StartMode {
  New,         // the folder must hold no run (files other programs put there are left alone)
  Resume,      // continue from DIR/checkpoint.pt, which must exist
  ResumeAuto,  // continue if DIR/checkpoint.pt exists, else start (for schedulers that rerun
               // one command line); refused if results are there without a checkpoint
  Overwrite    // delete the run's files (see kRunFiles), then start
};

// The files a run writes into its folder: what New refuses to replace and Overwrite deletes.
// Other files (a driver's log.txt, a user's notes) are never touched.
extern const std::vector<std::string> kRunFiles;

// Those of kRunFiles present in `dir`.
std::vector<std::string> run_files_in(const std::string& dir);

// Throws FolderLock's "in use" error if another process holds `dir`'s lock now; creates nothing
// (for a check before a resume reads the folder; the FolderLock taken later is what counts).
void refuse_if_in_use(const std::string& dir, const std::string& what = "run folder");

// An exclusive lock on DIR/.lock (flock), held while the object lives, so that two trainers
// never write one folder. It is released by the kernel when the process ends, however it ends
// (SIGKILL included), so a crash leaves no stale lock. `what` names the folder's kind in the
// message ("run folder", "sweep folder"). Creates the folder. Throws std::runtime_error naming
// the folder (and the holder's pid) if another process holds the lock or the folder cannot be
// written.
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir, const std::string& what = "run folder");
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

// Decides, for a locked run folder, whether to resume. Deletes the run's files for Overwrite
// (and the leftovers of a run that stopped before its first checkpoint for ResumeAuto). Throws
// std::invalid_argument with a message that names the folder, what it holds and the option
// that would continue or replace it. Returns true when the run resumes from its checkpoint.
bool prepare_run_folder(const std::string& dir, StartMode mode);

// Deletes `files` (names relative to `dir`); throws std::runtime_error naming a file that
// cannot be removed.
void remove_files(const std::string& dir, const std::vector<std::string>& files);

}  // namespace centerloss::trainer
