#include "index/codec/isa.h"

#include "index/codec/internal/kernels.h"

namespace tqdb::index {
namespace {

bool CpuHasAvx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
}

bool CpuHasAvx512() {
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}

}  // namespace

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kBest:
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return internal::Avx2Kernels() != nullptr && CpuHasAvx2();
    case Isa::kAvx512:
      return internal::Avx512Kernels() != nullptr && CpuHasAvx512();
  }
  return false;
}

Isa ResolveIsa(Isa isa) {
  if (isa != Isa::kBest) return isa;
  static const Isa best = IsaSupported(Isa::kAvx512) ? Isa::kAvx512
                          : IsaSupported(Isa::kAvx2) ? Isa::kAvx2
                                                     : Isa::kScalar;
  return best;
}

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) out.push_back(isa);
  }
  return out;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kBest:
      return "best";
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

namespace internal {
namespace {

const Kernels* GetKernelsUncached(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return Avx512Kernels();
    case Isa::kAvx2:
      return Avx2Kernels();
    default:
      return &ScalarKernels();
  }
}

}  // namespace

const Kernels* GetKernels(Isa isa) {
  // Resolved once: the hot path asks per vector.
  static const Kernels* const table[] = {
      GetKernelsUncached(ResolveIsa(Isa::kBest)),
      &ScalarKernels(),
      IsaSupported(Isa::kAvx2) ? Avx2Kernels() : nullptr,
      IsaSupported(Isa::kAvx512) ? Avx512Kernels() : nullptr,
  };
  const int i = static_cast<int>(isa);
  return i >= 0 && i < 4 ? table[i] : nullptr;
}

}  // namespace internal
}  // namespace tqdb::index
