// fuzz_replay TARGET PATH...: runs a fuzz target once on each file (folders: each file in
// them, sorted), as libFuzzer does when given files. Exit 0 when every input ran; an input
// that finds a bug aborts the program, naming the input first.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_target.h"

namespace {

void collect(const std::string& path, std::vector<std::string>& files) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    std::fprintf(stderr, "fuzz_replay: no such file or folder: %s\n", path.c_str());
    std::exit(2);
  }
  if (!S_ISDIR(info.st_mode)) {
    files.push_back(path);
    return;
  }
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') names.emplace_back(entry->d_name);
    }
    ::closedir(dir);
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) collect(path + "/" + name, files);
}

}  // namespace

int main(int argc, char** argv) {
  const FuzzFunction target = argc >= 3 ? find_fuzz_target(argv[1]) : nullptr;
  if (target == nullptr) {
    std::fprintf(stderr, "usage: fuzz_replay TARGET FILE_OR_FOLDER...; targets:");
    print_fuzz_targets();
    return 2;
  }
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) collect(argv[i], files);
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "%s: %s (%zu bytes)\n", argv[1], file.c_str(), bytes.size());
    target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("%s: %zu inputs ran\n", argv[1], files.size());
  return files.empty() ? 1 : 0;
}
