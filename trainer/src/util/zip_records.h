#pragma once
// Checks a zip archive's records against their CRC-32 checksums, before LibTorch parses them.
#include <string>

namespace centerloss::trainer {

// Reads every record of the zip archive at `path` (a checkpoint as written by torch::save) and
// compares it with the CRC-32 its header holds. LibTorch's reader does not (its miniz is built
// without the check), so a damaged record reaches its parsers, and some of those abort the
// process instead of throwing. Throws std::runtime_error: "<what> cannot be loaded: not a zip
// archive (...)" or "<what> is corrupt: record '<name>' fails its check (CRC error)"; an intact
// archive returns. Reads the file in 64 KiB pieces (no copy in memory).
void check_zip_records(const std::string& path, const std::string& what);

}  // namespace centerloss::trainer
