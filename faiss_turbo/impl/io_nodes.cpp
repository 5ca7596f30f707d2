#include <faiss_turbo/impl/io_nodes.h>

#include <cxxabi.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <typeinfo>

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexReplicas.h>
#include <faiss/IndexShards.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/io_faiss_parts.h>

namespace faiss_turbo {
namespace io {

/*************************************************************
 * Index fields
 *************************************************************/

void put_index_fields(PayloadWriter& pw, const faiss::Index& idx) {
    pw.put<int64_t>(idx.d);
    pw.put<int64_t>(idx.ntotal);
    pw.put<uint8_t>(idx.is_trained);
    pw.put<int32_t>((int32_t)idx.metric_type);
    pw.put<float>(idx.metric_arg);
}

bool get_bool(PayloadReader& pr) {
    uint8_t b = pr.get<uint8_t>();
    FAISS_THROW_IF_NOT_FMT(
            b <= 1,
            "faiss-turbo read: %s: boolean byte %d at %zd",
            pr.what.c_str(),
            (int)b,
            pr.pos - 1);
    return b;
}

namespace {

/// the metrics of FAISS 1.7.3 (casting any other int to the enum is UB)
bool known_metric(int32_t m) {
    return (m >= faiss::METRIC_INNER_PRODUCT && m <= faiss::METRIC_Lp) ||
           (m >= faiss::METRIC_Canberra && m <= faiss::METRIC_JensenShannon);
}

} // namespace

IndexFields get_index_fields(PayloadReader& pr) {
    IndexFields f;
    f.d = pr.get<int64_t>();
    f.ntotal = pr.get<int64_t>();
    f.is_trained = get_bool(pr);
    int32_t metric = pr.get<int32_t>();
    f.metric_arg = pr.get<float>();
    FAISS_THROW_IF_NOT_FMT(
            f.d >= 1 && f.d <= kMaxDim && f.ntotal >= 0 &&
                    f.ntotal <= kMaxNtotal && known_metric(metric) &&
                    std::isfinite(f.metric_arg),
            "faiss-turbo read: %s: bad index fields d=%ld ntotal=%ld "
            "metric=%d",
            pr.what.c_str(),
            (long)f.d,
            (long)f.ntotal,
            (int)metric);
    f.metric = (faiss::MetricType)metric;
    return f;
}

void apply_index_fields(const IndexFields& f, faiss::Index& idx) {
    idx.d = f.d;
    idx.ntotal = f.ntotal;
    idx.is_trained = f.is_trained;
    idx.metric_type = f.metric;
    idx.metric_arg = f.metric_arg;
}

void check_index_fields(
        const IndexFields& f,
        const faiss::Index& idx,
        const std::string& what) {
    FAISS_THROW_IF_NOT_FMT(
            idx.d == f.d && idx.ntotal == f.ntotal &&
                    idx.metric_type == f.metric,
            "faiss-turbo read: %s: found d=%ld ntotal=%ld metric=%d, "
            "expected d=%ld ntotal=%ld metric=%d",
            what.c_str(),
            (long)idx.d,
            (long)idx.ntotal,
            (int)idx.metric_type,
            (long)f.d,
            (long)f.ntotal,
            (int)f.metric);
}

/*************************************************************
 * Tree walk
 *************************************************************/

std::string class_name(const faiss::Index* idx) {
    if (!idx) {
        return "null index";
    }
    const char* mangled = typeid(*idx).name();
    int status = 0;
    char* dem = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string res = status == 0 && dem ? dem : mangled;
    free(dem);
    return res;
}

namespace {

/// the sub-indexes of the containers we know, to look for ours inside
std::vector<const faiss::Index*> children_of(const faiss::Index* idx) {
    if (auto m = dynamic_cast<const faiss::IndexIDMap*>(idx)) {
        return {m->index};
    } else if (auto p = dynamic_cast<const faiss::IndexPreTransform*>(idx)) {
        return {p->index};
    } else if (auto r = dynamic_cast<const faiss::IndexRefine*>(idx)) {
        return {r->base_index, r->refine_index};
    } else if (auto h = dynamic_cast<const faiss::IndexHNSW*>(idx)) {
        return {h->storage};
    } else if (auto ivf = dynamic_cast<const faiss::IndexIVF*>(idx)) {
        return {ivf->quantizer};
    }
    std::vector<const faiss::Index*> res;
    if (auto s = dynamic_cast<const faiss::IndexShards*>(idx)) {
        for (int i = 0; i < s->count(); i++) {
            res.push_back(s->at(i));
        }
    } else if (auto rep = dynamic_cast<const faiss::IndexReplicas*>(idx)) {
        for (int i = 0; i < rep->count(); i++) {
            res.push_back(rep->at(i));
        }
    }
    return res;
}

bool is_turbo(const faiss::Index* idx) {
    return dynamic_cast<const IndexTurboQuant*>(idx) ||
           dynamic_cast<const IndexTurboQuantFastScan*>(idx) ||
           dynamic_cast<const IndexIVFTurboQuant*>(idx);
}

} // namespace

bool contains_turbo(const faiss::Index* idx) {
    if (!idx) {
        return false;
    }
    if (is_turbo(idx)) {
        return true;
    }
    for (const faiss::Index* c : children_of(idx)) {
        if (contains_turbo(c)) {
            return true;
        }
    }
    return false;
}

void write_node(const faiss::Index* idx, SectionWriter& w, int depth) {
    FAISS_THROW_IF_NOT_MSG(idx, "faiss-turbo write: null index in the tree");
    FAISS_THROW_IF_NOT_FMT(
            depth <= kMaxDepth,
            "faiss-turbo write: indexes nested deeper than %d",
            kMaxDepth);
    if (!contains_turbo(idx)) {
        write_faiss_index(idx, w);
        return;
    }
    if (write_turbo_node(idx, w, depth) ||
        write_container_node(idx, w, depth)) {
        return;
    }
    FAISS_THROW_FMT(
            "faiss-turbo write: cannot serialize a %s that contains a "
            "TurboQuant index (supported: IndexTurboQuant, "
            "IndexTurboQuantFastScan, IndexIVFTurboQuant, "
            "IndexIDMap(2), "
            "IndexPreTransform, IndexRefine(Flat), IndexShards, IndexHNSW)",
            class_name(idx).c_str());
}

faiss::Index* read_node(SectionReader& r, int depth) {
    FAISS_THROW_IF_NOT_FMT(
            depth <= kMaxDepth,
            "faiss-turbo read: indexes nested deeper than %d (corrupted "
            "file)",
            kMaxDepth);
    Section head = r.next();
    if (head.tag == kTagFaissIndex) {
        return read_faiss_index(head);
    }
    faiss::Index* idx = read_turbo_node(head, r, depth);
    if (!idx) {
        idx = read_container_node(head, r, depth);
    }
    FAISS_THROW_IF_NOT_FMT(
            idx,
            "faiss-turbo read: %s is not an index node (corrupted file or "
            "written by a newer version)",
            head.name().c_str());
    return idx;
}

} // namespace io
} // namespace faiss_turbo
