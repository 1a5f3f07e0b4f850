// Non-x86 builds: only the scalar fast-scan kernel exists.
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {

AccumulateFn AccumulateAvx2() { return nullptr; }
AccumulateFn AccumulateAvx512() { return nullptr; }

}  // namespace tqdb::index::internal
