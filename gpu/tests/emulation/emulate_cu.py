"""Turn a CUDA source of gpu/impl into C++ for the CPU emulation
(cuda_emulation.h): shared memory becomes block-wide statics (blocks run one
at a time) or the block's dynamic buffer, <<<>>> launches become EMU_LAUNCH
(cuda_emulation.h answers the attribute and occupancy queries). Inline
PTX lives in headers (ptx.cuh) that offer emulated forms under
TQ_CUDA_EMULATION, defined by cuda_emulation.h.
Usage: emulate_cu.py input.cu output.cpp"""
import re
import sys

PRELUDE = """#include "cuda_emulation.h"
"""


def main(src, dst):
    s = open(src).read()
    s = re.sub(r"extern __shared__ (?:__align__\(\d+\) )?(\w+) (\w+)\[\];",
               r"\1* \2 = (\1*)emu::dyn_smem();", s)
    s = s.replace("__shared__ __align__(16)", "alignas(16) static")
    s = s.replace("__shared__", "static")
    # the kernel in parentheses: a template-id's commas are not the
    # macro's
    s = re.sub(r"(\w+(?:<[\w, ]+>)?)<<<(.*?)>>>\(", r"EMU_LAUNCH((\1), \2, ",
               s, flags=re.S)
    if "asm volatile" in s:
        sys.exit("emulate_cu.py: inline PTX left in " + src + ": emulate it")
    open(dst, "w").write(PRELUDE + s)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
