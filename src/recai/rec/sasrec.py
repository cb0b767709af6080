"""SASRec (Kang & McAuley 2018): a causal Transformer over each user's item sequence.

Training is the efficient kind: every user's sequence is cut from the end into windows of
``max_len + 1`` items, and each window gives a loss at every position (next-item prediction with the
causal mask), which is equivalent to RecBole's "one sample per prefix" but costs one forward pass per
window, so an epoch takes seconds. The loss is cross-entropy over the whole catalog (``loss='ce'``) or
a sampled softmax over ``negatives`` uniformly drawn items shared by the batch (``loss='sampled'``)
for large catalogs.

Details that matter: sequences are left-padded and position embeddings count back from the most recent
item, so the same position always means "k items ago"; attention is causal and never looks at padding
(each position may always attend to itself, so no row is fully masked); the output layer is tied to
the item embeddings; early stopping on validation NDCG@10 keeps the best weights; a checkpoint is
written after every epoch (atomically) and ``resume=True`` continues from it; everything is seeded.
"""

from __future__ import annotations

import copy
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from recai.data.atomic import atomic_file
from recai.data.interactions import Interactions
from recai.rec.base import Recommender
from recai.rec.estimator import check_choice

LOSSES = ("ce", "sampled")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError("SASRec needs PyTorch: pip install torch (CPU build is fine)") from exc
    return torch


class SASRec(Recommender):
    """SASRec, the sequential recommender of recai: the order of a history, not only its items, decides
    what comes next (module docstring for how it trains).

    Training stops after ``epochs``, after ``patience`` epochs without a better validation NDCG@10 (when
    ``fit`` is given ``valid``; the best weights are kept) or once ``time_budget_s`` has passed, whichever
    comes first.

    Args:
        hidden: width of the item and position embeddings and of the Transformer.
        layers: Transformer blocks.
        heads: attention heads (``hidden`` must be divisible by them).
        inner: width of each block's feed-forward layer.
        max_len: most recent items of a history the model reads.
        dropout: dropout on the embeddings and inside the blocks.
        learning_rate: Adam's step size.
        weight_decay: Adam's L2 penalty.
        batch_size: training windows per step.
        epochs: the most passes over the training windows.
        patience: epochs without a better validation NDCG@10 before training stops.
        loss: ``"ce"`` (softmax over the whole catalog) or ``"sampled"`` (over ``negatives`` shared
            random items, for large catalogs).
        negatives: sampled items per batch with ``loss="sampled"``.
        time_budget_s: seconds of training after which no new epoch starts (None: no limit).
        seed: seeds initialisation, batch order and sampling.
        threads: torch CPU threads (None: torch's choice).
        checkpoint_dir: folder for a checkpoint written after every epoch (None: none).
        resume: continue from the checkpoint in ``checkpoint_dir`` when there is one.
        progress: show a progress bar per epoch.
    """

    name = "sasrec"

    def __init__(
        self,
        *,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        inner: int = 256,
        max_len: int = 50,
        dropout: float = 0.2,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        epochs: int = 200,
        patience: int = 20,
        loss: str = "ce",
        negatives: int = 512,
        time_budget_s: float | None = None,
        seed: int = 0,
        threads: int | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        progress: bool = False,
    ) -> None:
        check_choice("loss", loss, LOSSES)
        if hidden % heads:
            raise ValueError("hidden must be divisible by heads")
        super().__init__(locals())
        self.net_: Any = None
        self.history_: list[dict[str, float]] = []
        self.best_epoch_: int | None = None

    # ---------------------------------------------------------------- data
    def _windows(self, interactions: Interactions) -> np.ndarray:
        """(n_windows, max_len + 1) item ids (position + 1, 0 = padding), left-padded, cut from the end."""
        indptr, codes = interactions.sequence_arrays()
        rows: list[np.ndarray] = []
        width = self.max_len + 1
        for u in range(interactions.n_users):
            seq = codes[indptr[u] : indptr[u + 1]] + 1
            end = len(seq)
            while end >= 2:
                chunk = seq[max(0, end - width) : end]
                rows.append(np.pad(chunk, (width - len(chunk), 0)))
                end -= self.max_len
        return np.vstack(rows) if rows else np.zeros((0, width), dtype=np.int64)

    def _batch_inputs(self, histories: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(histories), self.max_len), dtype=np.int64)
        for r, h in enumerate(histories):
            recent = h[-self.max_len :] + 1
            if len(recent):
                out[r, -len(recent) :] = recent
        return out

    # ------------------------------------------------------------- training
    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        torch = _torch()
        from recai.rec.validation import quick_ndcg

        if self.threads:
            torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.net_ = _build_net(torch, interactions.n_items, self)
        optimizer = torch.optim.Adam(
            self.net_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        windows = self._windows(interactions)
        start_epoch, best, best_state, stale = 0, -1.0, None, 0
        self.history_ = []
        ckpt = Path(self.checkpoint_dir) / "checkpoint.pt" if self.checkpoint_dir else None
        if ckpt is not None and self.resume and ckpt.exists():
            state = torch.load(ckpt, weights_only=True)  # tensors and plain data only: no code runs
            self.net_.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, best, stale = state["epoch"] + 1, state["best"], state["stale"]
            best_state, self.history_ = state["best_state"], state["history"]
            self.best_epoch_ = state["best_epoch"]
            rng.bit_generator.state = state["numpy_rng"]
            torch.set_rng_state(state["torch_rng"])
        started = time.perf_counter() - (self.history_[-1]["seconds"] if self.history_ else 0.0)
        for epoch in range(start_epoch, self.epochs):
            self.net_.train()
            order = rng.permutation(len(windows))
            total, count = 0.0, 0
            batches = range(0, len(order), self.batch_size)
            for b in tqdm(batches, desc=f"sasrec epoch {epoch}", leave=False, disable=not self.progress):
                batch = torch.from_numpy(windows[order[b : b + self.batch_size]])
                loss = self._loss(torch, batch[:, :-1], batch[:, 1:], interactions.n_items)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
                count += len(batch)
            record = {
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "seconds": time.perf_counter() - started,
            }
            if valid is not None:
                record["valid_ndcg@10"] = quick_ndcg(self, interactions, valid)
                if record["valid_ndcg@10"] > best:
                    best, stale, self.best_epoch_ = record["valid_ndcg@10"], 0, epoch
                    best_state = copy.deepcopy(self.net_.state_dict())
                    record["best_at_seconds"] = record["seconds"]
                else:
                    stale += 1
            self.history_.append(record)
            if ckpt is not None:
                self._checkpoint(torch, ckpt, optimizer, epoch, best, stale, best_state, rng)
            out_of_time = self.time_budget_s is not None and record["seconds"] >= self.time_budget_s
            if (valid is not None and stale >= self.patience) or out_of_time:
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()

    def _loss(self, torch: Any, inputs: Any, targets: Any, n_items: int) -> Any:
        hidden = self.net_(inputs)  # (B, L, H)
        mask = (targets > 0) & (inputs > 0)  # a prediction needs at least one real item before it
        h = hidden[mask]  # (N, H)
        y = targets[mask] - 1  # item positions
        table = self.net_.item.weight[1:]  # (n_items, H)
        if self.loss == "ce":
            return torch.nn.functional.cross_entropy(h @ table.T, y)
        negatives = torch.randint(0, n_items, (self.negatives,))
        pos_logit = (h * table[y]).sum(-1, keepdim=True)
        neg_logits = h @ table[negatives].T
        neg_logits = neg_logits.masked_fill(
            negatives[None, :] == y[:, None], float("-inf")
        )  # accidental hits
        logits = torch.cat([pos_logit, neg_logits], dim=1)
        return torch.nn.functional.cross_entropy(logits, torch.zeros(len(y), dtype=torch.long))

    def _checkpoint(
        self,
        torch: Any,
        path: Path,
        optimizer: Any,
        epoch: int,
        best: float,
        stale: int,
        best_state: Any,
        rng: np.random.Generator,
    ) -> None:
        state = {
            "net": self.net_.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "best": best,
            "stale": stale,
            "best_state": best_state,
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_file(path) as tmp:
            torch.save(state, tmp)

    # -------------------------------------------------------------- scoring
    def _score(self, histories: list[np.ndarray], users: list[Any] | None) -> np.ndarray:
        torch = _torch()
        was_training = self.net_.training
        self.net_.eval()
        out = np.empty((len(histories), self.n_items_), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, len(histories), 512):
                inputs = torch.from_numpy(self._batch_inputs(histories[start : start + 512]))
                last = self.net_(inputs)[:, -1, :]
                out[start : start + len(inputs)] = (last @ self.net_.item.weight[1:].T).double().numpy()
        if was_training:
            self.net_.train()
        return out

    def item_vectors(self) -> np.ndarray:
        return self.net_.item.weight[1:].detach().numpy().copy()

    # ---------------------------------------------------------- persistence
    def _state(self) -> dict[str, np.ndarray]:
        torch = _torch()
        buffer = io.BytesIO()
        torch.save(self.net_.state_dict(), buffer)
        return {"net": np.frombuffer(buffer.getvalue(), dtype=np.uint8)}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        torch = _torch()
        self.net_ = _build_net(torch, self.n_items_, self)
        self.net_.load_state_dict(torch.load(io.BytesIO(state["net"].tobytes()), weights_only=True))
        self.net_.eval()

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["resume"] = False  # a loaded model is trained; loading must not resume training
        return params


def _build_net(torch: Any, n_items: int, cfg: SASRec) -> Any:
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)
            self.position = nn.Embedding(cfg.max_len, cfg.hidden)
            self.norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
            self.drop = nn.Dropout(cfg.dropout)
            layer = nn.TransformerEncoderLayer(
                cfg.hidden,
                cfg.heads,
                cfg.inner,
                dropout=cfg.dropout,
                activation="gelu",
                batch_first=True,
                layer_norm_eps=1e-12,
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.apply(self._init)
            self.register_buffer(
                "causal", torch.triu(torch.ones(cfg.max_len, cfg.max_len, dtype=torch.bool), 1)
            )

        @staticmethod
        def _init(module: Any) -> None:
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

        def forward(self, seq: Any) -> Any:
            length = seq.shape[1]
            positions = torch.arange(cfg.max_len - length, cfg.max_len)
            x = self.drop(self.norm(self.item(seq) + self.position(positions)[None]))
            pad = seq == 0
            blocked = self.causal[-length:, -length:][None] | pad[:, None, :]
            blocked = blocked & ~torch.eye(length, dtype=torch.bool)[None]  # a row may always see itself
            mask = blocked.repeat_interleave(cfg.heads, dim=0)
            h = self.encoder(x, mask=mask)
            return h * (~pad)[..., None]

    return Net()
