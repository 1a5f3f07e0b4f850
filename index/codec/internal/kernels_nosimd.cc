// Non-x86 builds: only the scalar kernels exist.
#include "index/codec/internal/kernels.h"

namespace tqdb::index::internal {

const Kernels* Avx2Kernels() { return nullptr; }
const Kernels* Avx512Kernels() { return nullptr; }

}  // namespace tqdb::index::internal
