/**
 * The sections of a TurboQuantizer in a faiss-turbo file: its parameters
 * and every table it uses (rotation, codebooks, QJL projection), so that a
 * file reads to the same codec on every machine without recomputing
 * anything from the seed.
 */
#pragma once

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/io_sections.h>

namespace faiss_turbo {
namespace io {

/// kTagCodecParams, kTagRotation, kTagCodebooks, then kTagQJL for PROD
void write_codec(const TurboQuantizer& tq, SectionWriter& w);

/// the same sections; every field and table is validated (sizes, ranges,
/// permutations, sorted codebooks, finite values) before tq is filled
void read_codec(SectionReader& r, TurboQuantizer& tq);

} // namespace io
} // namespace faiss_turbo
