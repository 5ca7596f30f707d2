/**
 * index_factory with TurboQuant encodings. Strings that are not ours go to
 * faiss::index_factory unchanged.
 *
 *   TQmse<b>  TQprod<b>  TQ<b> (= TQmse<b>)
 *   b: 1..8, an integer or with one decimal (2.5); suffix "c": centered
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
};

/// true if the whole token is a TurboQuant encoding; fills spec
bool parse_tq_token(const std::string& token, TQSpec& spec);

faiss::Index* index_factory(
        int d,
        const char* description,
        faiss::MetricType metric = faiss::METRIC_L2);

} // namespace faiss_turbo
