#include "util/zip_records.h"

#include <fmt/format.h>
#include <zip.h>

#include <memory>
#include <stdexcept>
#include <vector>

namespace centerloss::trainer {

void check_zip_records(const std::string& path, const std::string& what) {
  auto damaged = [&](const std::string& why) {
    return std::runtime_error(fmt::format("{} is corrupt: {}", what, why));
  };
  int code = 0;
  // ZIP_CHECKCONS also compares each record's local header with the central directory.
  zip_t* archive = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (archive == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw std::runtime_error(fmt::format("{} cannot be loaded: not a zip archive ({})", what, why));
  }
  const std::unique_ptr<zip_t, void (*)(zip_t*)> closer(archive, [](zip_t* z) { zip_discard(z); });

  std::vector<char> buffer(1 << 16);
  const zip_int64_t records = zip_get_num_entries(archive, 0);
  for (zip_int64_t i = 0; i < records; ++i) {
    const char* name = zip_get_name(archive, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
    const std::string record = name != nullptr ? name : fmt::format("#{}", i);
    zip_file_t* file = zip_fopen_index(archive, static_cast<zip_uint64_t>(i), 0);
    if (file == nullptr) throw damaged(fmt::format("record '{}': {}", record, zip_strerror(archive)));
    // zip_fread compares the CRC-32 once it reaches the end of the record.
    zip_int64_t got = 0;
    while ((got = zip_fread(file, buffer.data(), buffer.size())) > 0) {
    }
    const std::string why = got < 0 ? zip_file_strerror(file) : std::string();
    zip_fclose(file);
    if (got < 0) throw damaged(fmt::format("record '{}' fails its check ({})", record, why));
  }
}

}  // namespace centerloss::trainer
