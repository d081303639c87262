// Small POSIX file-system helpers used instead of std::filesystem: the PyTorch wheel's
// libtorch.so exports its own (older) std::filesystem symbols, which the dynamic linker binds
// ahead of libstdc++'s; some of them crash (std::filesystem::remove_all segfaults on a null
// function pointer). These helpers call libc only.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace centerloss::trainer {

std::string path_join(const std::string& dir, const std::string& name);
bool is_file(const std::string& path);       // a regular file (following links)
bool path_exists(const std::string& path);
bool is_dir(const std::string& path);        // a directory (following links)
// The names in a directory (not "." or ".."), sorted bytewise so that every machine lists them
// in one order; empty if it does not exist; throws std::runtime_error naming the path if it
// cannot be read.
std::vector<std::string> list_dir(const std::string& path);
std::string absolute_path(const std::string& path);  // relative paths are joined to the cwd
std::string parent_dir(const std::string& path);     // "a/b/c" -> "a/b"; "c" -> "."
std::string base_name(const std::string& path);      // "a/b/c" -> "c"
// mkdir -p; throws std::runtime_error naming the path on failure.
void make_dirs(const std::string& path);
// rename(2): atomic within one file system; throws std::runtime_error on failure.
void rename_path(const std::string& from, const std::string& to);
// Writes a file so that readers never see it half written, and it survives a crash once this
// returns: `write` fills `path`.tmp, which is flushed to disk (fsync) and renamed over `path`,
// then the directory is flushed. Throws std::runtime_error naming the file on failure.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);
// rm -rf (no error if missing); throws std::runtime_error if something cannot be removed.
void remove_tree(const std::string& path);

}  // namespace centerloss::trainer
