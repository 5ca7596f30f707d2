/**
 * Reading and writing indexes that contain TurboQuant indexes. Indexes
 * without one are written by faiss::write_index (a plain FAISS file) and
 * plain FAISS files are read by faiss::read_index, unchanged.
 *
 * Errors (unreadable, truncated or corrupted input, unsupported index) throw
 * faiss::FaissException with a message naming the problem.
 *
 * ---------------------------------------------------------------------------
 * File format, version 1 (all integers and floats little-endian)
 *
 * A file is a sequence of sections. Section = 32-byte header + payload +
 * zero padding to a multiple of 8 bytes:
 *   u8[4] tag | u32 reserved (0) | u64 payload size |
 *   u64 xxhash64(payload, seed 0) | u64 xxhash64(header bytes 0..23)
 * A reader checks the header hash, bounds the size (<= 2^40 and <= the
 * bytes left when known), reads the payload in chunks and checks its hash
 * before parsing it. Payloads start at multiples of 8 from the file start.
 *
 * file  = FTQH{u32 format_version, u32 reserved = 0}  node
 *         (the first 4 bytes, "FTQH", tell our files from FAISS's)
 *         FTQE{u64 number of sections before this one}
 * node  = head section (its tag gives the index type), the sections of its
 *         parts, then its child nodes
 * Every head payload starts with the index fields
 *   F = i64 d, i64 ntotal, u8 is_trained, i32 metric_type, f32 metric_arg
 * Vectors are written as u64 count + elements ("vec<T>") where noted.
 *
 * TQFL  IndexTurboQuant: F, u8 centered, SD; codec; CODE
 * TQFS  IndexTurboQuantFastScan: as TQFL (CODE in the codec's row layout;
 *       the blocks are rebuilt on reading)
 *   SD = i32 scan_mode, f32 rerank_factor (search_defaults), then i32
 *        prescan only when it is not 0 (readers before it refuse such a
 *        file: trailing bytes); SD is absent in files written before it
 *        was added, which read as the defaults. IVF heads never hold a
 *        prescan (a flat-index option: writing one is refused)
 *   codec = TQPA{u64 d, u32 variant (0 MSE, 1 PROD), f32 bits,
 *                u8 debiased, u32 rotation (1 dense, 2 Hadamard),
 *                u32 qjl type (0 Gaussian, 1 Hadamard), u64 seed,
 *                u64 n_hi, u32 b_hi, u32 b_lo, u64 code_size, vec<f32> mean}
 *           TQRO{u32 type, u64 d, dense: f32[d*d] row-major;
 *                Hadamard: u32 rounds, i8[rounds*d] signs,
 *                u32[rounds*d] perms}
 *           TQCB{2 x (u64 d, i32 nbits, f64 mse, vec<f32> centroids,
 *                vec<f32> thresholds)}: the b_lo codebook, then b_hi
 *           TQQJ (PROD only){u32 type, u64 d, Gaussian: f32[d*d];
 *                Hadamard: as in TQRO}
 *   CODE  raw codes, ntotal * code_size bytes (the layout of
 *         TurboQuantizer.h)
 * TQIV  IndexIVFTurboQuant: F, u64 nlist, u64 nprobe, u64 max_codes,
 *       i32 parallel_mode, u8 by_residual, u8 centered,
 *       u8 quantizer_trains_alone, u8 direct_map type, SD; codec;
 *   ILSZ  u64[nlist] list sizes
 *   ILCO  the codes of list 0, then list 1, ... (sum(sizes) * code_size
 *         bytes, one contiguous block: memory-mappable later)
 *   ILID  i64 ids in the same order
 *   then the coarse quantizer node (any index, FAIS for FAISS's). The
 *   direct map is rebuilt from the lists; the lists read as
 *   ArrayInvertedLists (any InvertedLists can be written).
 * TQIF  IndexIVFTurboQuantFastScan: as TQIV (ILCO in the codec's row
 *       layout); the lists read as BlockedInvertedLists
 * IDMP / IDM2  IndexIDMap / IndexIDMap2: F; IDS_{i64[ntotal]}; child
 * PRET  IndexPreTransform: F, u32 n; n x VTRF; child
 * REFN / REFF  IndexRefine / IndexRefineFlat: F, f32 k_factor; base node;
 *       refine node
 * SHRD  IndexShards: F, u8 successive_ids, u8 threaded, u32 n; n nodes
 * HNSW  IndexHNSW over any storage: F; HNSG; storage node
 * FAIS  a sub-index without TurboQuant inside: F, then faiss::write_index
 *       bytes
 * FAISS-owned parts (FAISS's bytes after a prefix of ours, cross-checked):
 *   VTRF{i64 d_in, i64 d_out, u8 is_trained, write_VectorTransform bytes}
 *   HNSG{i64 ntotal, write_index bytes of an IndexHNSWFlat shell with an
 *        empty storage: the graph; checked against ntotal when read}
 * The reader checks every field against the others (dimensions, counts,
 * code sizes, permutations, sorted codebooks, graph links) and recomputes
 * nothing from the seed: a file reads to the same index on every machine.
 * Not stored: the IVF clustering parameters (cp); which InvertedLists
 * class held the lists.
 * ---------------------------------------------------------------------------
 */
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

#include <faiss/Index.h>
#include <faiss/impl/io.h>

namespace faiss_turbo {

void write_index(const faiss::Index* idx, const char* fname);
void write_index(const faiss::Index* idx, FILE* f);
void write_index(const faiss::Index* idx, faiss::IOWriter* writer);

/** @param io_flags passed to faiss::read_index for plain FAISS files; a
 *                  faiss-turbo file accepts IO_FLAG_READ_ONLY, and
 *                  IO_FLAG_MMAP and IO_FLAG_ONDISK_SAME_DIR, which do not
 *                  apply to it (it is read into memory), as FAISS ignores
 *                  flags that do not apply to an index type */
faiss::Index* read_index(const char* fname, int io_flags = 0);
faiss::Index* read_index(FILE* f, int io_flags = 0);
faiss::Index* read_index(faiss::IOReader* reader, int io_flags = 0);

std::vector<uint8_t> serialize_index(const faiss::Index* idx);

/// the whole buffer must be one index (trailing bytes are an error)
faiss::Index* deserialize_index(const uint8_t* data, size_t size);
faiss::Index* deserialize_index(const std::vector<uint8_t>& data);

/// deep copy: faiss::clone_index for plain FAISS indexes, a round trip
/// through serialize_index otherwise
faiss::Index* clone_index(const faiss::Index* idx);

/// true if idx is or contains a TurboQuant index (then write_index writes
/// a faiss-turbo file)
bool index_contains_turbo(const faiss::Index* idx);

} // namespace faiss_turbo
