#include <faiss_turbo/index_factory.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <regex>
#include <typeinfo>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/index_factory.h>

#include <faiss_turbo/IndexHNSWTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>

namespace faiss_turbo {

bool parse_tq_token(const std::string& token, TQSpec& spec) {
    static const std::regex re("TQ(mse|prod)?([0-9]+(\\.[0-9]+)?)(c?)(fs)?");
    std::smatch m;
    if (!std::regex_match(token, m, re)) {
        return false;
    }
    spec.variant = m[1] == "prod" ? TQVariant::PROD : TQVariant::MSE;
    std::string b = m[2];
    FAISS_THROW_IF_NOT_FMT(
            b.size() <= 3 && (b.size() == 1 || b[1] == '.'),
            "index_factory: bad bit width in \"%s\": 1..8 with at most "
            "one decimal",
            token.c_str());
    spec.bits = std::stof(b);
    FAISS_THROW_IF_NOT_FMT(
            spec.bits >= 1 && spec.bits <= 8,
            "index_factory: bit width %s in \"%s\" not in 1..8",
            b.c_str(),
            token.c_str());
    spec.centered = m[4] == "c";
    spec.fastscan = m[5] == "fs";
    return true;
}

std::string tq_token(const TQSpec& spec) {
    char buf[32];
    int b10 = (int)std::lround(spec.bits * 10);
    if (b10 % 10 == 0) {
        snprintf(buf, sizeof(buf), "%d", b10 / 10);
    } else {
        snprintf(buf, sizeof(buf), "%d.%d", b10 / 10, b10 % 10);
    }
    return std::string("TQ") +
           (spec.variant == TQVariant::PROD ? "prod" : "mse") + buf +
           (spec.centered ? "c" : "") + (spec.fastscan ? "fs" : "");
}

namespace {

/*************************************************************
 * tokens: the description cut at ',', '(' and ')'
 *************************************************************/

struct Token {
    std::string text;
    bool delim = false;
    bool tq = false; ///< one of ours
    TQSpec spec;
};

bool is_delim(char c) {
    return c == ',' || c == '(' || c == ')';
}

std::vector<Token> tokenize(const std::string& s) {
    std::vector<Token> toks;
    size_t i = 0;
    while (i < s.size()) {
        Token t;
        if (is_delim(s[i])) {
            t.text = s.substr(i++, 1);
            t.delim = true;
        } else {
            size_t j = i;
            while (j < s.size() && !is_delim(s[j])) {
                j++;
            }
            t.text = s.substr(i, j - i);
            i = j;
            // "TQ..." is our namespace: a near miss is an error, not FAISS's
            if (t.text.compare(0, 2, "TQ") == 0) {
                t.tq = parse_tq_token(t.text, t.spec);
                FAISS_THROW_IF_NOT_FMT(
                        t.tq,
                        "index_factory: \"%s\" in \"%s\" is not a TurboQuant "
                        "encoding (TQmse<b>, TQprod<b> or TQ<b>, b in 1..8 "
                        "with at most one decimal, optional suffix c)",
                        t.text.c_str(),
                        s.c_str());
            }
        }
        toks.push_back(t);
    }
    return toks;
}

/// the description with our tokens replaced by placeholder; starts[i] is
/// where token i begins in it
std::string substitute(
        const std::vector<Token>& toks,
        const char* placeholder,
        std::vector<size_t>* starts = nullptr) {
    std::string s;
    for (const Token& t : toks) {
        if (starts) {
            starts->push_back(s.size());
        }
        s += t.tq ? placeholder : t.text;
    }
    return s;
}

/// what FAISS could not parse, from its message ("could not parse index
/// string <rest>" or "could not parse code description <rest> in ...")
std::string faiss_remainder(const std::string& what) {
    const char* markers[] = {
            "could not parse index string ",
            "could not parse code description "};
    for (const char* m : markers) {
        size_t p = what.find(m);
        if (p == std::string::npos) {
            continue;
        }
        std::string rest = what.substr(p + strlen(m));
        size_t in = rest.find(" in ");
        if (in != std::string::npos) {
            rest.resize(in);
        }
        while (!rest.empty() && isspace((unsigned char)rest.back())) {
            rest.pop_back();
        }
        return rest;
    }
    return "";
}

/// where FAISS stopped, in the user's terms: the index of the first token
/// of the part it could not parse, or -1
int failing_token(const std::vector<Token>& toks, const std::string& what) {
    std::vector<size_t> starts;
    std::string s = substitute(toks, "Flat", &starts);
    std::string rest = faiss_remainder(what);
    if (rest.empty() || rest.size() > s.size() ||
        s.compare(s.size() - rest.size(), rest.size(), rest) != 0) {
        return -1;
    }
    size_t ofs = s.size() - rest.size();
    for (size_t i = 0; i < toks.size(); i++) {
        if (starts[i] == ofs) {
            return toks[i].delim ? -1 : (int)i;
        }
    }
    return -1;
}

std::unique_ptr<faiss::Index> build_placeholder(
        int d,
        const std::vector<Token>& toks,
        const char* placeholder,
        faiss::MetricType metric,
        const std::string& description) {
    std::string s = substitute(toks, placeholder);
    try {
        return std::unique_ptr<faiss::Index>(
                faiss::index_factory(d, s.c_str(), metric));
    } catch (const std::exception& e) {
        int bad = failing_token(toks, e.what());
        if (bad >= 0) {
            std::string part;
            for (size_t i = bad; i < toks.size(); i++) {
                part += toks[i].text;
            }
            FAISS_THROW_FMT(
                    "index_factory: cannot parse \"%s\": FAISS stops at "
                    "token \"%s\" (in \"%s\"): %s",
                    description.c_str(),
                    toks[bad].text.c_str(),
                    part.c_str(),
                    e.what());
        }
        FAISS_THROW_FMT(
                "index_factory: cannot build \"%s\" (as \"%s\" for FAISS): %s",
                description.c_str(),
                s.c_str(),
                e.what());
    }
}

/*************************************************************
 * swapping our encoders in
 *
 * The description is built twice, with our tokens as "Flat" and as "SQ8",
 * both valid wherever FAISS accepts an encoding. Walking the two trees
 * together, the nodes that differ are exactly the encodings our tokens
 * stand for, in the order of the string; the "Flat" tree is kept and those
 * nodes are replaced.
 *************************************************************/

struct EncoderSwap {
    std::vector<const Token*> specs; ///< our tokens, in string order
    size_t next = 0;
    std::string description;

    const Token& take(const faiss::Index* node) {
        FAISS_THROW_IF_NOT_FMT(
                next < specs.size(),
                "index_factory(\"%s\"): unexpected %s",
                description.c_str(),
                typeid(*node).name());
        return *specs[next++];
    }

    /// throws unless s may be the encoding of a `where` index
    void check_fastscan(const TQSpec& s, const char* where) const {
        FAISS_THROW_IF_NOT_FMT(
                !s.fastscan,
                "index_factory(\"%s\"): \"%s\": the fast-scan layout (fs) "
                "is for flat and IVF indexes, not %s",
                description.c_str(),
                tq_token(s).c_str(),
                where);
    }

    std::unique_ptr<faiss::Index>
    flat(const faiss::Index* node, const TQSpec& s) {
        if (s.fastscan) {
            FAISS_THROW_IF_NOT_FMT(
                    s.variant == TQVariant::MSE,
                    "index_factory(\"%s\"): \"%s\": the fast-scan layout "
                    "takes TQmse codes only",
                    description.c_str(),
                    tq_token(s).c_str());
            return std::make_unique<IndexTurboQuantFastScan>(
                    node->d, s.bits, node->metric_type, s.centered);
        }
        return std::make_unique<IndexTurboQuant>(
                node->d, s.bits, s.variant, node->metric_type, s.centered);
    }

    std::unique_ptr<IndexIVFTurboQuant>
    ivf_of(faiss::IndexIVF* node, const TQSpec& s) {
        if (!s.fastscan) {
            return std::make_unique<IndexIVFTurboQuant>(
                    node->quantizer,
                    node->d,
                    node->nlist,
                    s.bits,
                    s.variant,
                    node->metric_type,
                    kIVFTurboQuantByResidual,
                    s.centered);
        }
        FAISS_THROW_IF_NOT_FMT(
                s.variant == TQVariant::MSE,
                "index_factory(\"%s\"): \"%s\": the fast-scan layout takes "
                "TQmse codes only",
                description.c_str(),
                tq_token(s).c_str());
        return std::make_unique<IndexIVFTurboQuantFastScan>(
                node->quantizer,
                node->d,
                node->nlist,
                s.bits,
                node->metric_type,
                kIVFTurboQuantByResidual,
                s.centered);
    }

    std::unique_ptr<faiss::Index> ivf(faiss::IndexIVF* node, const TQSpec& s) {
        auto res = ivf_of(node, s);
        res->quantizer_trains_alone = node->quantizer_trains_alone;
        res->cp = node->cp;
        res->clustering_index = node->clustering_index;
        res->nprobe = node->nprobe;
        res->max_codes = node->max_codes;
        res->parallel_mode = node->parallel_mode;
        // the quantizer moves to the new index
        res->own_fields = node->own_fields;
        node->own_fields = false;
        return res;
    }

    std::unique_ptr<faiss::Index>
    hnsw(faiss::IndexHNSW* node, const TQSpec& s) {
        check_fastscan(s, "HNSW storage");
        auto storage = flat(node, s);
        auto res = std::make_unique<IndexHNSWTurboQuant>(storage.get());
        res->own_fields = true;
        storage.release();
        res->hnsw = node->hnsw; // M, efConstruction, efSearch, levels
        res->is_trained = res->storage->is_trained;
        return res;
    }

    /// node is one of our encodings (twin differs from it)
    std::unique_ptr<faiss::Index>
    make_encoder(faiss::Index* node, const faiss::Index* twin) {
        const Token& tok = take(node);
        if (dynamic_cast<const faiss::IndexFlat*>(node) &&
            dynamic_cast<const faiss::IndexScalarQuantizer*>(twin)) {
            return flat(node, tok.spec);
        }
        auto iv = dynamic_cast<faiss::IndexIVFFlat*>(node);
        if (iv && dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(twin)) {
            return ivf(iv, tok.spec);
        }
        auto hn = dynamic_cast<faiss::IndexHNSWFlat*>(node);
        if (hn && dynamic_cast<const faiss::IndexHNSWSQ*>(twin)) {
            return hnsw(hn, tok.spec);
        }
        FAISS_THROW_FMT(
                "index_factory: \"%s\" in \"%s\" stands where FAISS builds a "
                "%s; TurboQuant is supported as the encoding of a flat, IVF "
                "or HNSW index",
                tok.text.c_str(),
                description.c_str(),
                typeid(*node).name());
    }

    void
    swap_child(faiss::Index*& child, bool owned, const faiss::Index* twin) {
        std::unique_ptr<faiss::Index> r = swap(child, twin);
        if (r) {
            FAISS_THROW_IF_NOT_MSG(
                    owned, "index_factory: sub-index not owned by its parent");
            delete child;
            child = r.release();
        }
    }

    /// returns the index that replaces node, or null if node stays
    std::unique_ptr<faiss::Index>
    swap(faiss::Index* node, const faiss::Index* twin) {
        if (typeid(*node) != typeid(*twin)) {
            return make_encoder(node, twin);
        }
        if (auto pt = dynamic_cast<faiss::IndexPreTransform*>(node)) {
            auto tw = dynamic_cast<const faiss::IndexPreTransform*>(twin);
            swap_child(pt->index, pt->own_fields, tw->index);
            pt->is_trained = pt->index->is_trained;
            for (const faiss::VectorTransform* vt : pt->chain) {
                pt->is_trained = pt->is_trained && vt->is_trained;
            }
        } else if (auto im = dynamic_cast<faiss::IndexIDMap*>(node)) {
            auto tw = dynamic_cast<const faiss::IndexIDMap*>(twin);
            swap_child(im->index, im->own_fields, tw->index);
            im->is_trained = im->index->is_trained;
        } else if (auto rf = dynamic_cast<faiss::IndexRefine*>(node)) {
            auto tw = dynamic_cast<const faiss::IndexRefine*>(twin);
            swap_child(rf->base_index, rf->own_fields, tw->base_index);
            swap_child(
                    rf->refine_index, rf->own_refine_index, tw->refine_index);
            rf->is_trained =
                    rf->base_index->is_trained && rf->refine_index->is_trained;
        }
        return nullptr;
    }
};

/// every "HNSW<M>" of the description (an index or a coarse quantizer) has
/// M >= 2: FAISS builds smaller ones, whose add crashes (0) or never ends
/// (1)
void check_hnsw_links(const std::string& description) {
    for (size_t p = description.find("HNSW"); p != std::string::npos;
         p = description.find("HNSW", p + 4)) {
        size_t e = p + 4;
        while (e < description.size() &&
               isdigit((unsigned char)description[e])) {
            e++;
        }
        if (e > p + 4) {
            // strtol saturates where atol's overflow is undefined
            const long m = std::strtol(
                    description.substr(p + 4, e - p - 4).c_str(), nullptr, 10);
            FAISS_THROW_IF_NOT_FMT(
                    m >= 2,
                    "index_factory: \"%s\" in \"%s\": HNSW needs M >= 2",
                    description.substr(p, e - p).c_str(),
                    description.c_str());
        }
    }
}

} // namespace

faiss::Index*
index_factory(int d, const char* description, faiss::MetricType metric) {
    FAISS_THROW_IF_NOT_FMT(d > 0, "index_factory: d=%d must be > 0", d);
    FAISS_THROW_IF_NOT_MSG(description, "index_factory: null description");
    check_hnsw_links(description);
    std::vector<Token> toks = tokenize(description);
    EncoderSwap sw;
    sw.description = description;
    for (const Token& t : toks) {
        if (t.tq) {
            sw.specs.push_back(&t);
        }
    }
    if (sw.specs.empty()) {
        return faiss::index_factory(d, description, metric);
    }
    std::unique_ptr<faiss::Index> index =
            build_placeholder(d, toks, "Flat", metric, description);
    std::unique_ptr<faiss::Index> twin;
    try {
        twin = build_placeholder(d, toks, "SQ8", metric, description);
    } catch (const std::exception& e) {
        FAISS_THROW_FMT(
                "index_factory: a TurboQuant encoding in \"%s\" stands where "
                "FAISS accepts no encoding but Flat (%s)",
                description,
                e.what());
    }
    std::unique_ptr<faiss::Index> r = sw.swap(index.get(), twin.get());
    if (r) {
        index = std::move(r);
    }
    FAISS_THROW_IF_NOT_FMT(
            sw.next == sw.specs.size(),
            "index_factory: \"%s\" in \"%s\" is not where FAISS accepts an "
            "encoding (e.g. inside a coarse quantizer's parentheses)",
            sw.specs[std::min(sw.next, sw.specs.size() - 1)]->text.c_str(),
            description);
    return index.release();
}

/*************************************************************
 * reverse_index_factory
 *************************************************************/

namespace {

TQSpec spec_of(const TurboQuantizer& tq, bool centered, bool fs = false) {
    TQSpec s;
    s.variant = tq.variant;
    s.bits = tq.bits;
    s.centered = centered;
    s.fastscan = fs;
    return s;
}

std::string transform_token(const faiss::VectorTransform* vt) {
    std::string dout = std::to_string(vt->d_out);
    if (auto nt = dynamic_cast<const faiss::NormalizationTransform*>(vt)) {
        FAISS_THROW_IF_NOT_MSG(
                nt->norm == 2, "reverse_index_factory: only L2 normalization");
        return "L2norm";
    }
    if (auto opq = dynamic_cast<const faiss::OPQMatrix*>(vt)) {
        return "OPQ" + std::to_string(opq->M) + "_" + dout;
    }
    if (auto pca = dynamic_cast<const faiss::PCAMatrix*>(vt)) {
        return std::string("PCA") + (pca->eigen_power == -0.5f ? "W" : "") +
               (pca->random_rotation ? "R" : "") + dout;
    }
    if (dynamic_cast<const faiss::RandomRotationMatrix*>(vt)) {
        return "RR" + dout;
    }
    FAISS_THROW_FMT(
            "reverse_index_factory: no token for transform %s",
            typeid(*vt).name());
}

std::string sq_token(const faiss::ScalarQuantizer& sq) {
    switch (sq.qtype) {
        case faiss::ScalarQuantizer::QT_8bit:
            return "SQ8";
        case faiss::ScalarQuantizer::QT_6bit:
            return "SQ6";
        case faiss::ScalarQuantizer::QT_4bit:
            return "SQ4";
        case faiss::ScalarQuantizer::QT_fp16:
            return "SQfp16";
        default:
            FAISS_THROW_FMT(
                    "reverse_index_factory: no token for scalar quantizer "
                    "type %d",
                    (int)sq.qtype);
    }
}

std::string coarse_suffix(const faiss::Index* q) {
    if (dynamic_cast<const faiss::IndexFlat*>(q)) {
        return "";
    }
    auto h = dynamic_cast<const faiss::IndexHNSW*>(q);
    if (h && dynamic_cast<const faiss::IndexFlat*>(h->storage)) {
        return "_HNSW" + std::to_string(h->hnsw.nb_neighbors(1));
    }
    FAISS_THROW_FMT(
            "reverse_index_factory: no token for coarse quantizer %s",
            typeid(*q).name());
}

} // namespace

std::string reverse_index_factory(const faiss::Index* index) {
    FAISS_THROW_IF_NOT_MSG(index, "reverse_index_factory: null index");
    if (auto t = dynamic_cast<const IndexTurboQuant*>(index)) {
        return tq_token(spec_of(t->tq, t->centered));
    }
    if (auto t = dynamic_cast<const IndexTurboQuantFastScan*>(index)) {
        return tq_token(spec_of(t->tq, t->centered, true));
    }
    if (auto iv = dynamic_cast<const IndexIVFTurboQuant*>(index)) {
        const bool fs = dynamic_cast<const IndexIVFTurboQuantFastScan*>(iv);
        return "IVF" + std::to_string(iv->nlist) +
               coarse_suffix(iv->quantizer) + "," +
               tq_token(spec_of(iv->tq, iv->centered, fs));
    }
    if (auto pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        std::string s;
        for (const faiss::VectorTransform* vt : pt->chain) {
            s += transform_token(vt) + ",";
        }
        return s + reverse_index_factory(pt->index);
    }
    if (auto im = dynamic_cast<const faiss::IndexIDMap2*>(index)) {
        return "IDMap2," + reverse_index_factory(im->index);
    }
    if (auto im = dynamic_cast<const faiss::IndexIDMap*>(index)) {
        return "IDMap," + reverse_index_factory(im->index);
    }
    if (auto rf = dynamic_cast<const faiss::IndexRefine*>(index)) {
        std::string base = reverse_index_factory(rf->base_index);
        if (dynamic_cast<const faiss::IndexFlat*>(rf->refine_index)) {
            return base + ",RFlat";
        }
        return base + ",Refine(" + reverse_index_factory(rf->refine_index) +
               ")";
    }
    if (auto h = dynamic_cast<const faiss::IndexHNSW*>(index)) {
        return "HNSW" + std::to_string(h->hnsw.nb_neighbors(1)) + "," +
               reverse_index_factory(h->storage);
    }
    if (dynamic_cast<const faiss::IndexFlat*>(index)) {
        return "Flat";
    }
    if (auto sq = dynamic_cast<const faiss::IndexScalarQuantizer*>(index)) {
        return sq_token(sq->sq);
    }
    FAISS_THROW_FMT(
            "reverse_index_factory: no factory string for %s",
            typeid(*index).name());
}

} // namespace faiss_turbo
