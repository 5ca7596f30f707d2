#include <faiss_turbo/index_factory.h>

#include <regex>

#include <faiss/impl/FaissAssert.h>
#include <faiss/index_factory.h>

#include <faiss_turbo/IndexTurboQuant.h>

namespace faiss_turbo {

bool parse_tq_token(const std::string& token, TQSpec& spec) {
    static const std::regex re("TQ(mse|prod)?([0-9]+(\\.[0-9]+)?)(c?)");
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
    return true;
}

faiss::Index* index_factory(
        int d,
        const char* description,
        faiss::MetricType metric) {
    FAISS_THROW_IF_NOT_FMT(d > 0, "index_factory: d=%d must be > 0", d);
    FAISS_THROW_IF_NOT_MSG(description, "index_factory: null description");
    TQSpec spec;
    if (parse_tq_token(description, spec)) {
        return new IndexTurboQuant(
                d, spec.bits, spec.variant, metric, spec.centered);
    }
    return faiss::index_factory(d, description, metric);
}

} // namespace faiss_turbo
