// The checkpoint's first line of defence (util/zip_records.h) on any bytes: check_zip_records
// either throws std::runtime_error naming the file, or returns (every record read and its
// CRC-32 matched). The checkpoint target goes on to LibTorch's reader; this one needs no
// LibTorch, so it also runs in CI's sanitizer build of the parsers (make asan-parsers).
#include <stdexcept>
#include <string>

#include "fuzz_memfile.h"
#include "fuzz_target.h"
#include "util/zip_records.h"

CENTERLOSS_FUZZ_TARGET(zip) {
  MemFile file(data, size);
  try {
    centerloss::trainer::check_zip_records(file.path(), "fuzz.pt");
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string(e.what()).rfind("fuzz.pt ", 0) == 0, "message does not name the file: %s",
               e.what());
  }
  return 0;
}
