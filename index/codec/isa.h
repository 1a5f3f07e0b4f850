// Instruction-set selection for the codec and scan kernels.
//
// Every kernel has a scalar reference (always compiled, the definition of the
// result) and AVX2 / AVX-512 twins compiled with per-file flags and chosen once
// at run time by what the CPU supports. Twins produce bit-identical codes.
// Thread-safety: all functions are thread-safe.
#ifndef TQDB_INDEX_CODEC_ISA_H_
#define TQDB_INDEX_CODEC_ISA_H_

#include <vector>

namespace tqdb::index {

enum class Isa {
  kBest = 0,    // The best this CPU supports (resolved by ResolveIsa).
  kScalar = 1,  // Portable C++: the reference.
  kAvx2 = 2,    // AVX2 + FMA + F16C + BMI2.
  kAvx512 = 3,  // AVX-512 F/BW/DQ/VL + BMI2.
};

// True if this binary has the kernels and this CPU can run them.
bool IsaSupported(Isa isa);
// kBest → the best supported ISA; any other value is returned unchanged.
Isa ResolveIsa(Isa isa);
// Every supported ISA, scalar first (for equality tests and benches).
std::vector<Isa> SupportedIsas();
const char* IsaName(Isa isa);

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_ISA_H_
