#include <faiss_turbo/impl/blocked_codes.h>

#include <cstring>

#include <faiss/impl/FaissAssert.h>

namespace faiss_turbo {

void pack_block_code(
        const uint8_t* mse, size_t ngroups, size_t pos, uint8_t* blocks) {
    uint8_t* blk = blocks + (pos / kLutBlockCodes) * ngroups * kLutGroupBytes;
    const size_t i = pos % 16;
    const int shift = pos % kLutBlockCodes < 16 ? 0 : 4;
    const uint8_t keep = shift ? 0x0f : 0xf0; // the other code's nibbles
    for (size_t g = 0; g < ngroups; g++) {
        uint8_t* grp = blk + g * kLutGroupBytes;
        grp[i] = (grp[i] & keep) | (uint8_t)((mse[g] & 15) << shift);
        grp[16 + i] = (grp[16 + i] & keep) | (uint8_t)((mse[g] >> 4) << shift);
    }
}

void unpack_block_code(
        const uint8_t* blocks, size_t ngroups, size_t pos, uint8_t* mse) {
    const uint8_t* blk =
            blocks + (pos / kLutBlockCodes) * ngroups * kLutGroupBytes;
    const size_t i = pos % 16;
    const int shift = pos % kLutBlockCodes < 16 ? 0 : 4;
    for (size_t g = 0; g < ngroups; g++) {
        const uint8_t* grp = blk + g * kLutGroupBytes;
        mse[g] =
                (uint8_t)(((grp[i] >> shift) & 15) | (((grp[16 + i] >> shift) & 15) << 4));
    }
}

void BlockedCodes::set_codec(const TurboQuantizer& tq) {
    FAISS_THROW_IF_NOT_MSG(
            tq.qjl_bytes == 0, "fast-scan layout: TQmse codes only");
    clear();
    ngroups = tq.mse_bytes;
    code_size = tq.code_size;
    has_aux = tq.has_aux();
    has_moff = tq.ip_offset;
    has_cc = !tq.debiased;
}

void BlockedCodes::clear() {
    ntotal = 0;
    blocks.clear();
    norm.clear();
    aux.clear();
    moff.clear();
    cc.clear();
}

void BlockedCodes::append(
        const TurboQuantizer& tq, size_t n, const uint8_t* codes) {
    FAISS_THROW_IF_NOT_MSG(
            tq.code_size == code_size && tq.mse_bytes == ngroups,
            "fast-scan layout: codes of another codec");
    const size_t n1 = ntotal + n;
    blocks.resize(
            (n1 + kLutBlockCodes - 1) / kLutBlockCodes * block_bytes(), 0);
    norm.resize(n1);
    aux.resize(has_aux ? n1 : 0);
    moff.resize(has_moff ? n1 : 0);
    cc.resize(has_cc ? n1 : 0);
    std::vector<float> chat(has_cc ? tq.d : 0);
    for (size_t j = 0; j < n; j++) {
        const uint8_t* c = codes + j * code_size;
        const size_t i = ntotal + j;
        pack_block_code(c, ngroups, i, blocks.data());
        TQCodeScalars s;
        if (has_cc) { // decode_rotated's ||c_hat||^2, as the exact score's
            tq.decode_rotated(c, chat.data(), nullptr, s);
            cc[i] = s.cc;
        } else {
            tq.read_scalars(c, s);
        }
        norm[i] = s.norm;
        if (has_aux) {
            aux[i] = s.aux;
        }
        if (has_moff) {
            moff[i] = s.moff;
        }
    }
    ntotal = n1;
}

void BlockedCodes::code(
        const TurboQuantizer& tq, size_t i, uint8_t* out) const {
    FAISS_THROW_IF_NOT_FMT(
            i < ntotal, "fast-scan layout: code %zd of %zd", i, ntotal);
    memset(out, 0, code_size);
    unpack_block_code(blocks.data(), ngroups, i, out);
    tq.write_scalars(out, scalars(i));
}

size_t BlockedCodes::compact(const std::vector<bool>& keep) {
    FAISS_THROW_IF_NOT(keep.size() == ntotal);
    std::vector<uint8_t> mse(ngroups);
    size_t j = 0;
    for (size_t i = 0; i < ntotal; i++) {
        if (!keep[i]) {
            continue;
        }
        if (i != j) {
            unpack_block_code(blocks.data(), ngroups, i, mse.data());
            pack_block_code(mse.data(), ngroups, j, blocks.data());
            norm[j] = norm[i];
            if (has_aux) {
                aux[j] = aux[i];
            }
            if (has_moff) {
                moff[j] = moff[i];
            }
            if (has_cc) {
                cc[j] = cc[i];
            }
        }
        j++;
    }
    const size_t removed = ntotal - j;
    // zero the rest of the last block kept: padding codes stay all-zero
    std::vector<uint8_t> zero(ngroups, 0);
    const size_t end =
            (j + kLutBlockCodes - 1) / kLutBlockCodes * kLutBlockCodes;
    for (size_t i = j; i < end && i < ntotal; i++) {
        pack_block_code(zero.data(), ngroups, i, blocks.data());
    }
    ntotal = j;
    blocks.resize(nblocks() * block_bytes());
    norm.resize(j);
    aux.resize(has_aux ? j : 0);
    moff.resize(has_moff ? j : 0);
    cc.resize(has_cc ? j : 0);
    return removed;
}

size_t BlockedCodes::bytes() const {
    return blocks.size() +
           sizeof(float) * (norm.size() + aux.size() + moff.size() + cc.size());
}

} // namespace faiss_turbo
