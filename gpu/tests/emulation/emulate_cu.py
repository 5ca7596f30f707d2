"""Turn a CUDA source of gpu/impl into C++ for the CPU emulation
(cuda_emulation.h): shared memory becomes block-wide statics (blocks run one
at a time) or the block's dynamic buffer, <<<>>> launches become EMU_LAUNCH,
the inline-PTX helpers (ldmatrix, mma) call their emulations, and the
attribute / occupancy queries on kernels are answered by stubs.
Usage: emulate_cu.py input.cu output.cpp"""
import re
import sys

PRELUDE = """#include "cuda_emulation.h"
template <class K>
cudaError_t emu_func_attr(K, cudaFuncAttribute, int) {
    return cudaSuccess;
}
template <class K>
cudaError_t emu_occupancy(int* n, K, int, size_t) {
    *n = 1;
    return cudaSuccess;
}
"""


def replace_function(s, name, new_text):
    """replace the __device__ function `name` (its definition runs to the
    first closing brace at column 0) by new_text"""
    m = re.search(r"__device__\s+__forceinline__\s+\w+\s+" + name + r"\s*\(",
                  s)
    if not m:
        return s
    j = s.index("\n}\n", m.start()) + 3
    return s[:m.start()] + new_text + s[j:]


def main(src, dst):
    s = open(src).read()
    s = re.sub(r"extern __shared__ (?:__align__\(\d+\) )?(\w+) (\w+)\[\];",
               r"\1* \2 = (\1*)emu::dyn_smem();", s)
    s = s.replace("__shared__ __align__(16)", "alignas(16) static")
    s = s.replace("__shared__", "static")
    s = re.sub(r"(\w+(?:<\w+>)?)<<<(.*?)>>>\(", r"EMU_LAUNCH(\1, \2, ", s,
               flags=re.S)
    s = replace_function(
        s, "ldmatrix_x4",
        "inline void ldmatrix_x4(uint32_t r[4], const void* p) {\n"
        "    emu_ldmatrix_x4(r, p);\n}\n")
    s = replace_function(
        s, "mma_16816",
        "inline void mma_16816(float d[4], const uint32_t a[4], uint32_t b0, "
        "uint32_t b1) {\n    emu_mma_16816(d, a, b0, b1);\n}\n")
    s = replace_function(s, "smem_addr", "")
    s = re.sub(r"cudaFuncSetAttribute\(\s*", "emu_func_attr(", s)
    s = re.sub(r"cudaOccupancyMaxActiveBlocksPerMultiprocessor\(\s*",
               "emu_occupancy(", s)
    if "asm volatile" in s:
        sys.exit("emulate_cu.py: inline PTX left in " + src + ": emulate it")
    open(dst, "w").write(PRELUDE + s)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
