#include <faiss_turbo/impl/io_codec.h>

#include <cmath>

#include <faiss_turbo/impl/io_nodes.h>

namespace faiss_turbo {
namespace io {

namespace {

void check_finite(const std::vector<float>& v, const std::string& what) {
    for (float x : v) {
        FAISS_THROW_IF_NOT_FMT(
                std::isfinite(x),
                "faiss-turbo read: %s: non-finite value",
                what.c_str());
    }
}

/*************************************************************
 * Parameters
 *************************************************************/

void put_params(PayloadWriter& pw, const TurboQuantizer& tq) {
    pw.put<uint64_t>(tq.d);
    pw.put<uint32_t>((uint32_t)tq.variant);
    pw.put<float>(tq.bits);
    pw.put<uint8_t>(tq.debiased);
    pw.put<uint32_t>((uint32_t)tq.rotation_type);
    pw.put<uint32_t>((uint32_t)tq.qjl_type);
    pw.put<uint64_t>(tq.seed);
    pw.put<uint64_t>(tq.n_hi);
    pw.put<uint32_t>(tq.b_hi);
    pw.put<uint32_t>(tq.b_lo);
    pw.put<uint64_t>(tq.code_size);
    pw.put_vector(tq.mean);
    if (tq.ip_offset) { // absent: false (files of earlier versions)
        pw.put<uint8_t>(1);
    }
}

void get_params(const Section& s, TurboQuantizer& tq) {
    PayloadReader pr = s.reader();
    uint64_t d = pr.get<uint64_t>();
    FAISS_THROW_IF_NOT_FMT(
            d >= 2 && d <= (uint64_t)kMaxDim,
            "faiss-turbo read: %s: bad dimension %zd",
            s.name().c_str(),
            (size_t)d);
    tq.d = d;
    uint32_t variant = pr.get<uint32_t>();
    tq.bits = pr.get<float>();
    tq.debiased = get_bool(pr);
    uint32_t rot = pr.get<uint32_t>();
    uint32_t qjl = pr.get<uint32_t>();
    FAISS_THROW_IF_NOT_FMT(
            variant <= 1 &&
                    (rot == (uint32_t)RotationType::DENSE ||
                     rot == (uint32_t)RotationType::HADAMARD) &&
                    qjl <= 1,
            "faiss-turbo read: %s: unknown variant %u, rotation %u or QJL "
            "type %u",
            s.name().c_str(),
            variant,
            rot,
            qjl);
    tq.variant = (TQVariant)variant;
    tq.rotation_type = (RotationType)rot;
    tq.qjl_type = (QJLType)qjl;
    tq.seed = pr.get<uint64_t>();
    uint64_t n_hi = pr.get<uint64_t>();
    uint32_t b_hi = pr.get<uint32_t>(), b_lo = pr.get<uint32_t>();
    uint64_t code_size = pr.get<uint64_t>();
    pr.get_counted_vector(tq.mean, d);
    tq.ip_offset = pr.remaining() > 0 && get_bool(pr);
    pr.expect_end();
    check_finite(tq.mean, s.name() + " mean");
    tq.set_layout(); // validates d, bits, variant, debiased, mean size
    // the split is a function of (d, bits, variant) today; a file whose
    // split differs was written by rules this reader does not have
    FAISS_THROW_IF_NOT_FMT(
            n_hi == tq.n_hi && (int)b_hi == tq.b_hi && (int)b_lo == tq.b_lo &&
                    code_size == tq.code_size,
            "faiss-turbo read: %s: layout %zdx%ub+%ub, %zd B/code does not "
            "match this library's %zdx%db+%db, %zd B/code for d=%zd "
            "bits=%g",
            s.name().c_str(),
            (size_t)n_hi,
            b_hi,
            b_lo,
            (size_t)code_size,
            tq.n_hi,
            tq.b_hi,
            tq.b_lo,
            tq.code_size,
            tq.d,
            tq.bits);
}

/*************************************************************
 * Rotations (also the Hadamard QJL projection)
 *************************************************************/

void put_hadamard(PayloadWriter& pw, const HadamardRotation& h) {
    pw.put<uint32_t>(h.nrounds);
    std::vector<int8_t> signs(h.signs.size());
    for (size_t i = 0; i < signs.size(); i++) {
        signs[i] = h.signs[i] > 0 ? 1 : -1;
    }
    pw.put_array(signs.data(), signs.size());
    pw.put_array(h.perms.data(), h.perms.size());
}

std::shared_ptr<HadamardRotation> get_hadamard(PayloadReader& pr, size_t d) {
    auto h = std::make_shared<HadamardRotation>();
    h->d = d;
    uint32_t nrounds = pr.get<uint32_t>();
    FAISS_THROW_IF_NOT_FMT(
            nrounds >= 1 && nrounds <= 64,
            "faiss-turbo read: %s: bad number of Hadamard rounds %u",
            pr.what.c_str(),
            nrounds);
    h->nrounds = nrounds;
    std::vector<int8_t> signs;
    pr.get_vector(signs, nrounds * d);
    h->signs.resize(signs.size());
    for (size_t i = 0; i < signs.size(); i++) {
        FAISS_THROW_IF_NOT_FMT(
                signs[i] == 1 || signs[i] == -1,
                "faiss-turbo read: %s: bad sign",
                pr.what.c_str());
        h->signs[i] = signs[i];
    }
    pr.get_vector(h->perms, nrounds * d);
    h->check();
    return h;
}

/// a d x d float matrix, finite
void get_matrix(PayloadReader& pr, size_t d, std::vector<float>& m) {
    pr.get_vector(m, d * d);
    check_finite(m, pr.what);
}

void put_rotation(PayloadWriter& pw, const Rotation& rot) {
    pw.put<uint32_t>((uint32_t)rot.type());
    pw.put<uint64_t>(rot.d);
    if (auto dr = dynamic_cast<const DenseRotation*>(&rot)) {
        pw.put_array(dr->matrix.data(), dr->matrix.size());
    } else if (auto hr = dynamic_cast<const HadamardRotation*>(&rot)) {
        put_hadamard(pw, *hr);
    } else {
        FAISS_THROW_MSG("faiss-turbo write: unknown rotation class");
    }
}

std::shared_ptr<const Rotation>
get_rotation(const Section& s, const TurboQuantizer& tq) {
    PayloadReader pr = s.reader();
    uint32_t type = pr.get<uint32_t>();
    uint64_t d = pr.get<uint64_t>();
    FAISS_THROW_IF_NOT_FMT(
            type == (uint32_t)tq.rotation_type && d == tq.d,
            "faiss-turbo read: %s: rotation type %u d=%zd, the codec has "
            "type %d d=%zd",
            s.name().c_str(),
            type,
            (size_t)d,
            (int)tq.rotation_type,
            tq.d);
    std::shared_ptr<const Rotation> rot;
    if (tq.rotation_type == RotationType::DENSE) {
        auto dr = std::make_shared<DenseRotation>();
        dr->d = d;
        get_matrix(pr, d, dr->matrix);
        for (size_t i = 0; i < d; i++) {
            // cheap sanity check: rows of a rotation have unit norm
            double nrm = 0;
            for (size_t j = 0; j < d; j++) {
                nrm += (double)dr->matrix[i * d + j] * dr->matrix[i * d + j];
            }
            FAISS_THROW_IF_NOT_FMT(
                    std::fabs(nrm - 1) < 1e-3,
                    "faiss-turbo read: %s: row %zd is not a unit vector",
                    s.name().c_str(),
                    i);
        }
        rot = dr;
    } else {
        rot = get_hadamard(pr, d);
    }
    pr.expect_end();
    return rot;
}

/*************************************************************
 * Codebooks
 *************************************************************/

void put_codebook(PayloadWriter& pw, const Codebook& cb) {
    pw.put<uint64_t>(cb.d);
    pw.put<int32_t>(cb.nbits);
    pw.put<double>(cb.mse);
    pw.put_vector(cb.centroids);
    pw.put_vector(cb.thresholds);
}

std::shared_ptr<const Codebook>
get_codebook(PayloadReader& pr, const TurboQuantizer& tq, int nbits) {
    auto cb = std::make_shared<Codebook>();
    cb->d = pr.get<uint64_t>();
    cb->nbits = pr.get<int32_t>();
    cb->mse = pr.get<double>();
    FAISS_THROW_IF_NOT_FMT(
            cb->d == tq.d && cb->nbits == nbits,
            "faiss-turbo read: %s: codebook for d=%zd %d bits, the codec "
            "needs d=%zd %d bits",
            pr.what.c_str(),
            cb->d,
            cb->nbits,
            tq.d,
            nbits);
    pr.get_counted_vector(cb->centroids, size_t(1) << nbits);
    pr.get_counted_vector(cb->thresholds, size_t(1) << nbits);
    cb->check(); // sizes, order, finite centroids
    return cb;
}

/*************************************************************
 * QJL projection
 *************************************************************/

void put_qjl(PayloadWriter& pw, const QJLProjection& q) {
    pw.put<uint32_t>((uint32_t)q.type);
    pw.put<uint64_t>(q.d);
    if (q.type == QJLType::GAUSSIAN) {
        pw.put_array(q.gaussian.data(), q.gaussian.size());
    } else {
        put_hadamard(pw, *q.had);
    }
}

std::shared_ptr<const QJLProjection>
get_qjl(const Section& s, const TurboQuantizer& tq) {
    PayloadReader pr = s.reader();
    uint32_t type = pr.get<uint32_t>();
    uint64_t d = pr.get<uint64_t>();
    FAISS_THROW_IF_NOT_FMT(
            type == (uint32_t)tq.qjl_type && d == tq.d,
            "faiss-turbo read: %s: QJL type %u d=%zd, the codec has type %d "
            "d=%zd",
            s.name().c_str(),
            type,
            (size_t)d,
            (int)tq.qjl_type,
            tq.d);
    auto q = std::make_shared<QJLProjection>();
    q->d = d;
    q->type = tq.qjl_type;
    if (q->type == QJLType::GAUSSIAN) {
        get_matrix(pr, d, q->gaussian);
    } else {
        q->had = get_hadamard(pr, d);
    }
    pr.expect_end();
    return q;
}

} // namespace

void write_codec(const TurboQuantizer& tq, SectionWriter& w) {
    tq.check_tables();
    PayloadWriter params, rot, cbs;
    put_params(params, tq);
    w.write(kTagCodecParams, params);
    put_rotation(rot, *tq.rotation);
    w.write(kTagRotation, rot);
    put_codebook(cbs, *tq.cb_lo);
    put_codebook(cbs, *tq.cb_hi);
    w.write(kTagCodebooks, cbs);
    if (tq.variant == TQVariant::PROD) {
        PayloadWriter qjl;
        put_qjl(qjl, *tq.qjl);
        w.write(kTagQJL, qjl);
    }
}

void read_codec(SectionReader& r, TurboQuantizer& tq) {
    get_params(r.next(kTagCodecParams, "the codec parameters"), tq);
    tq.rotation = get_rotation(r.next(kTagRotation, "the rotation"), tq);
    Section cbs = r.next(kTagCodebooks, "the codebooks");
    PayloadReader pr = cbs.reader();
    tq.cb_lo = get_codebook(pr, tq, tq.b_lo);
    tq.cb_hi = get_codebook(pr, tq, tq.b_hi);
    pr.expect_end();
    if (tq.variant == TQVariant::PROD) {
        tq.qjl = get_qjl(r.next(kTagQJL, "the QJL projection"), tq);
    } else {
        tq.qjl.reset();
    }
    tq.check_tables();
}

} // namespace io
} // namespace faiss_turbo
