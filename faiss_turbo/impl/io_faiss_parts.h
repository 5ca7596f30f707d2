/**
 * Parts of a faiss-turbo file that FAISS serializes itself: a plain FAISS
 * sub-index (a coarse quantizer, a refinement index...), a VectorTransform,
 * an HNSW graph. Their FAISS bytes are the payload of one checked section,
 * after a small prefix of ours (dimensions, counts) that is cross-checked
 * with what FAISS returns; FAISS's readers only ever see bytes whose
 * checksum passed.
 *
 * Built with FAISS_TURBO_IO_FUZZING, the readers return stubs built from
 * the prefix instead of calling FAISS (a fuzzer must test our parsers, not
 * FAISS's, which do not survive corrupted input).
 */
#pragma once

#include <faiss/IndexHNSW.h>
#include <faiss/VectorTransform.h>

#include <faiss_turbo/impl/io_sections.h>

namespace faiss_turbo {
namespace io {

/// a whole node: kTagFaissIndex section, prefix = our IndexFields
void write_faiss_index(const faiss::Index* idx, SectionWriter& w);
faiss::Index* read_faiss_index(const Section& s);

/// kTagVectorTransform section, prefix = d_in, d_out, is_trained
void write_vector_transform(const faiss::VectorTransform* vt, SectionWriter& w);
faiss::VectorTransform* read_vector_transform(const Section& s);

/// kTagHNSWGraph section, prefix = ntotal; the graph is checked against
/// ntotal (neighbor ids in range, consistent offsets and levels)
void write_hnsw_graph(const faiss::IndexHNSW& idx, SectionWriter& w);
void read_hnsw_graph(const Section& s, int64_t ntotal, faiss::HNSW& out);

/// throws unless the graph is consistent for ntotal vectors (so that a
/// search cannot index outside the storage)
void check_hnsw_graph(const faiss::HNSW& h, int64_t ntotal);

} // namespace io
} // namespace faiss_turbo
