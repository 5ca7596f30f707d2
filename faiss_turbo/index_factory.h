/**
 * index_factory with TurboQuant encodings: every string faiss::index_factory
 * accepts, plus our tokens wherever FAISS accepts an encoding (a flat index,
 * after IVF<n>..., HNSW<M>, IDMap/IDMap2, pre-transforms, as the base or the
 * refinement of Refine/RFlat):
 *
 *   TQmse<b>  TQprod<b>  TQ<b> (= TQmse<b>)
 *   b: 1..8, an integer or with one decimal (2.5); suffix "c": centered;
 *   suffix "fs" (after "c"): the fast-scan layout, IndexTurboQuantFastScan
 *   (flat, IndexTurboQuantFastScan, and IVF, IndexIVFTurboQuantFastScan;
 *   TQmse at 1, 1.5, 2 or 4 bits: "TQmse4fs", "TQ2cfs", "IVF256,TQmse4fs")
 *
 * e.g. "IVF1024,TQmse4", "IVF256_HNSW32,TQprod3", "IDMap2,IVF256,TQ2.5",
 * "OPQ16_64,IVF256,TQmse4", "TQmse2c,RFlat", "IVF1024,TQmse2,Refine(SQ8)",
 * "HNSW32,TQmse4" (an IndexHNSW whose storage is an IndexTurboQuant).
 *
 * Tokens are whole: "ITQ64" is FAISS's. A token that starts with "TQ" but is
 * not one of ours is an error that names it. IVF indexes get
 * IndexIVFTurboQuant's defaults (by_residual, debiased).
 */
#pragma once

#include <string>

#include <faiss/Index.h>

#include <faiss_turbo/TurboQuantizer.h>

namespace faiss_turbo {

/// one parsed TurboQuant token
struct TQSpec {
    TQVariant variant = TQVariant::MSE;
    float bits = 0;
    bool centered = false;
    bool fastscan = false; ///< suffix "fs": the fast-scan layout
};

/// true if the whole token is a TurboQuant encoding; fills spec
bool parse_tq_token(const std::string& token, TQSpec& spec);

faiss::Index* index_factory(
        int d,
        const char* description,
        faiss::MetricType metric = faiss::METRIC_L2);

/// the canonical token of a spec, e.g. "TQmse4", "TQprod2.5c"
std::string tq_token(const TQSpec& spec);

/** A factory string that rebuilds the structure of index: our types inside
 * the FAISS wrappers the factory makes (pre-transforms L2norm, PCA, OPQ,
 * RR; IDMap, IDMap2; Refine/RFlat; HNSW) and Flat / SQ encodings. Codec
 * options the grammar cannot express (seed, rotation, debiased,
 * by_residual) are not part of it. Throws for anything else.
 */
std::string reverse_index_factory(const faiss::Index* index);

} // namespace faiss_turbo
