"""Turn a CUDA source of gpu/impl into C++ for the CPU emulation
(cuda_emulation.h): shared memory becomes block-wide statics (blocks run one
at a time) or the block's dynamic buffer, <<<>>> launches become EMU_LAUNCH,
the attribute / occupancy queries on kernels are answered by stubs. Inline
PTX lives in headers (ptx.cuh) that offer emulated forms under
TQ_CUDA_EMULATION, defined by cuda_emulation.h.
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


def main(src, dst):
    s = open(src).read()
    s = re.sub(r"extern __shared__ (?:__align__\(\d+\) )?(\w+) (\w+)\[\];",
               r"\1* \2 = (\1*)emu::dyn_smem();", s)
    s = s.replace("__shared__ __align__(16)", "alignas(16) static")
    s = s.replace("__shared__", "static")
    s = re.sub(r"(\w+(?:<\w+>)?)<<<(.*?)>>>\(", r"EMU_LAUNCH(\1, \2, ", s,
               flags=re.S)
    s = re.sub(r"cudaFuncSetAttribute\(\s*", "emu_func_attr(", s)
    s = re.sub(r"cudaOccupancyMaxActiveBlocksPerMultiprocessor\(\s*",
               "emu_occupancy(", s)
    if "asm volatile" in s:
        sys.exit("emulate_cu.py: inline PTX left in " + src + ": emulate it")
    open(dst, "w").write(PRELUDE + s)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
