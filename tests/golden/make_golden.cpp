/**
 * Regenerates the golden files of tests/golden: for each case of
 * golden_cases.h, <name>.ftq (written by faiss_turbo::write_index) and
 * <name>.expected (what test_io checks after reading it back).
 *
 *   make_golden_io <output dir>     (see README.md in this folder)
 */
#include <cstdio>
#include <memory>
#include <string>

#include <faiss_turbo/index_io.h>

#include "golden_cases.h"

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    for (const golden::Case& c : golden::cases()) {
        std::vector<float> xb = golden::gaussian(c.nb, c.d, c.data_seed);
        std::unique_ptr<faiss::Index> idx(c.build(xb.data()));
        std::string base = dir + "/" + c.name;
        faiss_turbo::write_index(idx.get(), (base + ".ftq").c_str());
        golden::Expected e = golden::compute(*idx, c);
        // the file must already answer exactly as the index it came from
        std::unique_ptr<faiss::Index> back(
                faiss_turbo::read_index((base + ".ftq").c_str()));
        golden::Expected eb = golden::compute(*back, c);
        if (eb.codes != e.codes || eb.decoded != e.decoded || eb.D != e.D ||
            eb.I != e.I) {
            fprintf(stderr,
                    "%s: the file read back answers differently\n",
                    c.name.c_str());
            return 1;
        }
        golden::write_expected(e, base + ".expected");
        printf("wrote %s.ftq and %s.expected\n", base.c_str(), base.c_str());
    }
    return 0;
}
