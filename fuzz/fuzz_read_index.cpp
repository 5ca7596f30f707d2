/**
 * libFuzzer target for faiss_turbo's readers (fuzz/run_fuzz.sh builds and
 * runs it). Built with FAISS_TURBO_IO_FUZZING: section checksums are not
 * compared, so mutated bytes reach our parsers, and FAISS-owned parts are
 * replaced by stubs (FAISS's own readers are not hardened).
 *
 * An input is a faiss-turbo file without its first 4 bytes (the "FTQH"
 * magic, put back here), so that no input goes to faiss::read_index. A
 * file that reads is then searched: what the reader accepts must be safe
 * to use. Any exception other than faiss::FaissException, any crash,
 * sanitizer report or oversized allocation is a bug.
 *
 * FTQ_FUZZ_WRITE_SEEDS=<dir> fuzz_read_index  writes the seed corpus
 * (small valid files of every node type) and exits.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <faiss/impl/FaissException.h>

#include <faiss_turbo/index_io.h>

#include "fuzz_seeds.h"

namespace {

void exercise(const faiss::Index& idx) {
    if (!idx.is_trained || idx.d > 4096) {
        return;
    }
    const int nq = 2, k = 3;
    std::vector<float> q(nq * idx.d);
    for (size_t i = 0; i < q.size(); i++) {
        q[i] = (float)((i * 37) % 11) - 5.0f;
    }
    std::vector<float> D(nq * k);
    std::vector<faiss_turbo::idx_t> I(nq * k);
    idx.search(nq, q.data(), k, D.data(), I.data());
    if (idx.ntotal > 0) {
        std::vector<float> r(idx.d);
        try {
            idx.reconstruct(I[0] >= 0 ? I[0] : 0, r.data());
        } catch (const faiss::FaissException&) {
            // not every index reconstructs
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* dir = getenv("FTQ_FUZZ_WRITE_SEEDS");
    if (dir) {
        int n = fuzzseeds::write_seeds(dir);
        printf("wrote %d seed files to %s\n", n, dir);
        exit(0);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> file(size + 4);
    memcpy(file.data(), "FTQH", 4);
    if (size > 0) {
        memcpy(file.data() + 4, data, size);
    }
    std::unique_ptr<faiss::Index> idx;
    try {
        idx.reset(faiss_turbo::deserialize_index(file));
    } catch (const faiss::FaissException&) {
        return 0;
    }
    try {
        exercise(*idx);
    } catch (const faiss::FaissException&) {
        // a clean refusal at search time is acceptable
    }
    return 0;
}
