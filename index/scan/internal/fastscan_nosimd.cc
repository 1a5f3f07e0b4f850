// Non-x86 builds: only the scalar fast-scan kernel exists.
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {

const FastScanKernels* FastScanAvx2() { return nullptr; }
const FastScanKernels* FastScanAvx512() { return nullptr; }

}  // namespace tqdb::index::internal
