/**
 * The index tree of a faiss-turbo file (see faiss_turbo/index_io.h): each
 * index is a node, a head section whose tag names its type, then the
 * sections of its parts, then its child nodes, in pre-order. Our codecs,
 * containers and FAISS-owned parts each live in their own impl/io_*.cpp.
 */
#pragma once

#include <cstdint>
#include <string>

#include <faiss/Index.h>

#include <faiss_turbo/impl/io_sections.h>

namespace faiss_turbo {
namespace io {

/// bumped when a change makes old readers misread new files
constexpr uint32_t kFormatVersion = 1;

// file framing
constexpr uint32_t kTagFileHead = fourcc("FTQH");
constexpr uint32_t kTagFileEnd = fourcc("FTQE");

// nodes (head sections)
constexpr uint32_t kTagTQFlat = fourcc("TQFL");
constexpr uint32_t kTagTQIVF = fourcc("TQIV");
constexpr uint32_t kTagTQFastScan = fourcc("TQFS");
constexpr uint32_t kTagTQIVFFastScan = fourcc("TQIF");
constexpr uint32_t kTagFaissIndex = fourcc("FAIS");
constexpr uint32_t kTagIDMap = fourcc("IDMP");
constexpr uint32_t kTagIDMap2 = fourcc("IDM2");
constexpr uint32_t kTagPreTransform = fourcc("PRET");
constexpr uint32_t kTagRefine = fourcc("REFN");
constexpr uint32_t kTagRefineFlat = fourcc("REFF");
constexpr uint32_t kTagShards = fourcc("SHRD");
constexpr uint32_t kTagHNSW = fourcc("HNSW");

// parts
constexpr uint32_t kTagCodecParams = fourcc("TQPA");
constexpr uint32_t kTagRotation = fourcc("TQRO");
constexpr uint32_t kTagCodebooks = fourcc("TQCB");
constexpr uint32_t kTagQJL = fourcc("TQQJ");
constexpr uint32_t kTagCodes = fourcc("CODE");
constexpr uint32_t kTagIds = fourcc("IDS_");
constexpr uint32_t kTagVectorTransform = fourcc("VTRF");
constexpr uint32_t kTagHNSWGraph = fourcc("HNSG");
constexpr uint32_t kTagInvListSizes = fourcc("ILSZ");
constexpr uint32_t kTagInvListCodes = fourcc("ILCO");
constexpr uint32_t kTagInvListIds = fourcc("ILID");

/// bounds on what a file may claim (a larger claim is corruption)
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxNtotal = int64_t(1) << 48;
constexpr int kMaxDepth = 32; ///< nesting of containers

/// the faiss::Index fields every node head starts with
struct IndexFields {
    int64_t d = 0;
    int64_t ntotal = 0;
    bool is_trained = false;
    faiss::MetricType metric = faiss::METRIC_L2;
    float metric_arg = 0;
};

void put_index_fields(PayloadWriter& pw, const faiss::Index& idx);

/// reads and bounds-checks the fields
IndexFields get_index_fields(PayloadReader& pr);

void apply_index_fields(const IndexFields& f, faiss::Index& idx);

/// throws unless idx has the d, ntotal and metric of f (what: for messages)
void check_index_fields(
        const IndexFields& f, const faiss::Index& idx, const std::string& what);

/// bool stored as one byte, which must be 0 or 1
bool get_bool(PayloadReader& pr);

/// class name of an index, for messages
std::string class_name(const faiss::Index* idx);

/// true if idx or any index it contains is one of ours
bool contains_turbo(const faiss::Index* idx);

void write_node(const faiss::Index* idx, SectionWriter& w, int depth);

/// the node starting at the next section; throws on anything inconsistent
faiss::Index* read_node(SectionReader& r, int depth);

// per kind of node (impl/io_*.cpp); write_* include the head section,
// read_* get it already read
bool write_turbo_node(const faiss::Index* idx, SectionWriter& w, int depth);
faiss::Index* read_turbo_node(const Section& head, SectionReader& r, int depth);

bool write_container_node(const faiss::Index* idx, SectionWriter& w, int depth);
faiss::Index*
read_container_node(const Section& head, SectionReader& r, int depth);

} // namespace io
} // namespace faiss_turbo
