"""TabM (Gorishniy et al., ICLR 2025): k MLPs in one net, trained at once as a parameter-efficient
ensemble (BatchEnsemble: the k members share every weight matrix and own only per-member scalings
and their output layer), from the authors' `tabm` package, with their numeric embeddings
(`rtdl_num_embeddings`, Gorishniy et al. 2022) optional in front.

`arch` picks the paper's variant: `tabm` (BatchEnsemble: every layer's input and output scaled per
member, the authors' default), `mini` (TabM-mini: one per-member scaling of the input, every layer
shared; on Otto as good and ~20% faster a step on the CPU, as the elementwise scalings cost there
nearly as much as the layers' matrix products) or `packed` (k separate MLPs, k times the weights).

The net returns (N, k, out_features), the k members' outputs, in training and in evaluation alike.
pipelines/proba.py reads that shape: the training loss is the mean of the members' own losses (as
the authors train it: a loss on their mean would fit one model), and early stopping, OOF and test
predictions use the ensemble, the members' mean probability (mean value for regression). The
trainer's history therefore logs `train_loss` and `val_loss` as the members' mean loss, and
`val_score` as the ensemble's.

Every encoded column is a number to TabM (the task's encoder already one-hot codes categories).
Piecewise-linear embeddings need bin edges from data: the net is built with placeholder edges and
`init_from_data` (pipelines/learners.py calls it with the fold's training rows) sets them to those
rows' quantiles; the edges are buffers, so a saved model carries its own.

`tabm` and `rtdl_num_embeddings` are imported when a TabM is built: they import scikit-learn's trees,
~2 s that `import models` (every command) would otherwise pay.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from core.config import EMBEDDINGS, TABM_ARCHS
from core.errors import UsageError
from models.mlp import ACTIVATIONS, Dropout
from models.registry import register_model


class TabMNet(nn.Module):
    """tabm.TabM on one float matrix (N, in_features) -> (N, k, out_features)."""

    def __init__(self, in_features: int, out_features: int, k: int, width: int, depth: int, dropout: float,
                 activation: str, embedding: str, n_bins: int, d_embedding: int, arch: str = "tabm"):
        import rtdl_num_embeddings as rne
        from tabm import TabM
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UsageError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        if arch not in TABM_ARCHS:
            raise UsageError(f"unknown arch {arch!r}; known: {', '.join(TABM_ARCHS)}")
        if embedding not in EMBEDDINGS:
            raise UsageError(f"unknown embedding {embedding!r}; known: {', '.join(EMBEDDINGS)}")
        self.n_bins = n_bins
        num = None
        if embedding == "periodic":
            num = rne.PeriodicEmbeddings(in_features, d_embedding, lite=False)
        elif embedding == "piecewise":      # version B: starts as a linear embedding, learns the pieces
            num = rne.PiecewiseLinearEmbeddings([torch.linspace(-3, 3, n_bins + 1)] * in_features, d_embedding,
                                                activation=False, version="B")
            # a buffer always, so the state dict's keys do not depend on the data (a column with one bin)
            num.impl.single_bin_mask = torch.zeros(in_features, dtype=torch.bool)
        # TabM.make: the authors' initialisation (random signs, or normal with embeddings, per feature chunk)
        self.tabm = TabM.make(n_num_features=in_features, d_out=out_features, num_embeddings=num, k=k,
                              n_blocks=depth, d_block=width, dropout=dropout,
                              arch_type="tabm" if arch == "tabm" else f"tabm-{arch}",
                              activation=ACTIVATIONS[activation].__name__)
        for block in self.tabm.backbone.blocks:     # models.mlp's Dropout: same semantics, cheaper on the CPU
            block[2] = Dropout(block[2].p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tabm(x)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Piecewise-linear embeddings: bin edges at `x`'s quantiles, column by column (n_bins bins, fewer
        where a column has fewer distinct values; a constant column one bin). Other embeddings: nothing."""
        import rtdl_num_embeddings as rne
        num = self.tabm.num_module
        if not isinstance(num, rne.PiecewiseLinearEmbeddings):
            return
        x = x.float()
        varying = (x != x[:1]).any(0)
        bins = [torch.stack([c, c + 1]) for c in x[0]]           # constant columns: one bin from their value
        with warnings.catch_warnings():     # "just two bin edges": a 0/1 column has one bin, as it should
            warnings.simplefilter("ignore")
            if varying.any() and len(x) > 2:
                found = iter(rne.compute_bins(x[:, varying], min(self.n_bins, len(x) - 1)))
                bins = [next(found) if v else b for v, b in zip(varying.tolist(), bins)]
            fresh = rne.PiecewiseLinearEmbeddings(bins, 1, activation=False, version="B").impl
        # the fresh encoding is max_bins wide, each column's last bin in its last slot; zeros fill the
        # gap to n_bins, which the encoding reads as unused bins (its own padding)
        gap = num.impl.weight.shape[1] - fresh.weight.shape[1]
        for name in ("weight", "bias"):
            new = getattr(fresh, name)
            getattr(num.impl, name).copy_(torch.cat([new[:, :-1], new.new_zeros(len(new), gap), new[:, -1:]], 1))
        single = fresh.single_bin_mask
        num.impl.single_bin_mask.copy_(single if single is not None else torch.zeros_like(num.impl.single_bin_mask))


# its own defaults over a task's, which are tuned for the MLP (Otto's 1024 units; each member costs a whole
# MLP of that width): the authors' dropout, 2 layers as with embeddings, 384 units rather than their 512 for
# 2-core CPUs; the forward pass in bf16 where the CPU has it natively (1.6x faster steps, measured).
# Otto, 5 folds, on a loaded 2-core machine: 0.4560 CV logloss at these settings with 20 epochs in 644 s of
# CPU time, against 0.4591 in 449 s for the default MLP (40 epochs, fp32), measured alongside. Otto's fold 0
# with piecewise-linear embeddings (stopping=inner): 0.4602 against 0.4622 without, at 2.7x the time per
# epoch (7.45 s against 2.77 s): `python bench/fold.py otto --set stopping=inner epochs=40 embedding=piecewise`
@register_model(kind="tabular", options=("heads", "width", "depth", "dropout", "activation", "embedding",
                                         "n_bins", "d_embedding", "arch"),
                defaults=dict(width=384, depth=2, dropout=0.1, lr=3e-3, precision="auto"))
def tabm(in_features: int, out_features: int, heads: int = 8, width: int = 384, depth: int = 2,
         dropout: float = 0.1, activation: str = "relu", embedding: str = "none", n_bins: int = 48,
         d_embedding: int = 16, arch: str = "tabm") -> nn.Module:
    """TabM: `heads` (the paper's k) MLPs of `depth` layers of `width` units sharing their weights
    (`arch`: tabm | mini | packed), each its own output; `embedding` none | periodic | piecewise in front."""
    return TabMNet(in_features, out_features, heads, width, depth, dropout, activation, embedding, n_bins,
                   d_embedding, arch)
