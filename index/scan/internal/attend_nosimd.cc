// Non-x86 builds: only the scalar attention kernels exist.
#include "index/scan/internal/attend_kernels.h"

namespace tqdb::index::internal {

const AttendKernels* AttendAvx2() { return nullptr; }
const AttendKernels* AttendAvx512() { return nullptr; }

}  // namespace tqdb::index::internal
