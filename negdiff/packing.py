"""Token sequences laid out in padded batches for scoring: one sequence per row, or prefix trees.

A :class:`PackedBatch` holds the inputs of one forward and, per scored token (an *entry*), which
position's hidden state predicts it and the token itself; :class:`negdiff.logprobs.LogprobPlan` runs
them. Sequence ``i`` is scored at its positions ``first[i] .. len-1``: the token at position ``p`` is
predicted by the state at position ``p - 1``.

Two layouts, the same numbers (to float rounding):

* **plain** (:func:`plain_batches`): one sequence per row, rows sorted by length (ties: input order),
  right-padded under a 2D attention mask; positions are implicit (0, 1, ...).
* **tree** (:func:`tree_batches`): sequences sorted lexicographically by token ids and packed, several
  per row, as a prefix tree: tokens that several sequences share from their first token on (the
  prefix a minimal pair has in common, the BOS of every sentence) are one *node*, fed once. Nodes are
  in depth-first order (a parent before its children); every node attends to itself and its
  ancestors only (a 4D mask ``[B, N, N]``) at position id = its depth. A causal transformer's state
  at position ``p`` depends on tokens ``0..p`` only, so each node's state is the state its token has
  in every sequence through it: a pair's shared prefix is computed once and both continuations
  attend to its keys and values, in the same forward (no cache to copy or crop, and every position
  still passes through every block, hooks included). A node's log-prob entry is computed once and
  shared by every sequence that scores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PackedBatch", "plain_batches", "tree_batches"]


@dataclass
class PackedBatch:
    """One forward's inputs and, per scored entry, where its prediction comes from.

    ``hidden_index`` are flat positions ``row * N + col`` (sorted) whose states feed the LM head;
    entry ``e`` is ``log P(entry_target[e] | state hidden_index[entry_hidden[e]])`` (``entry_hidden``
    is non-decreasing); ``item_entries[j]`` are the entries of sequence ``items[j]`` in the order of
    its scored positions.
    """

    items: list[int]
    input_ids: torch.Tensor  # int64 [B, N]
    attention_mask: torch.Tensor  # plain: int64 [B, N]; tree: bool [B, N, N] (query row may see key column)
    position_ids: torch.Tensor | None  # tree: int64 [B, N] (node depth); plain: None
    hidden_index: torch.Tensor  # int64 [H]
    entry_hidden: torch.Tensor  # int64 [E]
    entry_target: torch.Tensor  # int64 [E]
    item_entries: list[np.ndarray]
    max_depth: int  # the longest sequence in the batch

    @property
    def tree(self) -> bool:
        """Whether the batch is laid out as prefix trees (a 4D mask and explicit position ids)."""
        return self.position_ids is not None

    @property
    def n_entries(self) -> int:
        """Scored tokens this batch computes (shared ones once)."""
        return int(self.entry_target.numel())


def _greedy_groups(sizes: list[int], counts: list[int], batch_size: int, max_batch_tokens: int | None
                   ) -> list[list[int]]:
    """Consecutive groups of rows (already sorted by ``sizes``, ascending): at most ``batch_size``
    sequences (``counts`` per row) and, with ``max_batch_tokens``, ``n_rows * max(size)`` padded
    positions; a row that breaks a limit on its own is a group of its own."""
    groups: list[list[int]] = []
    k = 0
    while k < len(sizes):
        group, n_seq = [k], counts[k]
        k += 1
        while k < len(sizes) and n_seq + counts[k] <= batch_size and (
            max_batch_tokens is None or (len(group) + 1) * sizes[k] <= max_batch_tokens
        ):
            group.append(k)
            n_seq += counts[k]
            k += 1
        groups.append(group)
    return groups


def plain_batches(seqs: list[np.ndarray], firsts: list[int], *, batch_size: int,
                  max_batch_tokens: int | None, pad_id: int) -> list[PackedBatch]:
    """One sequence per row: length-sorted (ties: input order), right-padded with ``pad_id`` under a
    2D attention mask, at most ``batch_size`` sequences and ``max_batch_tokens`` padded positions a
    batch."""
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    groups = _greedy_groups([len(seqs[i]) for i in order], [1] * len(order), batch_size, max_batch_tokens)
    batches = []
    for group in groups:
        batch = [order[g] for g in group]
        T = max(len(seqs[i]) for i in batch)
        inp = np.full((len(batch), T), int(pad_id), dtype=np.int64)
        mask = np.zeros((len(batch), T), dtype=np.int64)
        hidden, targets, item_entries = [], [], []
        for r, i in enumerate(batch):
            inp[r, : len(seqs[i])] = seqs[i]
            mask[r, : len(seqs[i])] = 1
            pos = np.arange(firsts[i], len(seqs[i]), dtype=np.int64)
            item_entries.append(np.arange(len(targets), len(targets) + len(pos), dtype=np.int64) if len(pos)
                                else np.zeros(0, dtype=np.int64))
            hidden.extend((r * T + pos - 1).tolist())  # the state at p - 1 predicts the token at p
            targets.extend(inp[r, pos].tolist())
        batches.append(PackedBatch(
            items=batch, input_ids=torch.from_numpy(inp), attention_mask=torch.from_numpy(mask),
            position_ids=None, hidden_index=torch.tensor(hidden, dtype=torch.int64),
            entry_hidden=torch.arange(len(hidden), dtype=torch.int64),
            entry_target=torch.tensor(targets, dtype=torch.int64), item_entries=item_entries, max_depth=T,
        ))
    return batches


@dataclass
class _Row:
    """One prefix tree: per node its token, parent (-1 at a root) and depth; per sequence its node path."""

    tokens: list[int]
    parent: list[int]
    depth: list[int]
    items: list[int]
    paths: list[list[int]]


def _tree_rows(seqs: list[np.ndarray], order: list[int], row_tokens: int) -> list[_Row]:
    """Sequences (in lexicographic ``order``) packed greedily into prefix trees of at most
    ``row_tokens`` nodes (a longer sequence gets a tree of its own). Sorted order makes the longest
    prefix a sequence shares with any earlier one of its tree the one with its predecessor."""
    rows: list[_Row] = []
    row: _Row | None = None
    for i in order:
        s = seqs[i].tolist()
        lcp = 0
        if row is not None:
            prev = seqs[row.items[-1]].tolist()
            while lcp < min(len(s), len(prev)) and s[lcp] == prev[lcp]:
                lcp += 1
            if len(row.tokens) + len(s) - lcp > row_tokens:
                row, lcp = None, 0
        if row is None:
            row = _Row([], [], [], [], [])
            rows.append(row)
        path = row.paths[-1][:lcp] if lcp else []
        for t in s[lcp:]:
            row.parent.append(path[-1] if path else -1)
            row.depth.append(len(path))
            path.append(len(row.tokens))
            row.tokens.append(int(t))
        row.items.append(i)
        row.paths.append(path)
    return rows


def _ancestor_mask(parent: list[int], n: int) -> np.ndarray:
    """bool [n, n]: query node q may see key node k iff k is q or one of its ancestors (rows past
    ``len(parent)`` are padding and see only themselves)."""
    allowed = np.zeros((n, n), dtype=bool)
    for q, p in enumerate(parent):
        if p >= 0:
            allowed[q] = allowed[p]
        allowed[q, q] = True
    for q in range(len(parent), n):
        allowed[q, q] = True
    return allowed


def _tree_batch(rows: list[_Row], firsts: list[int], pad_id: int) -> PackedBatch:
    """The padded batch of some prefix trees, with one entry per scored node (shared by the sequences
    through it)."""
    N = max(len(r.tokens) for r in rows)
    inp = np.full((len(rows), N), int(pad_id), dtype=np.int64)
    pos = np.zeros((len(rows), N), dtype=np.int64)
    allowed = np.zeros((len(rows), N, N), dtype=bool)
    scored: dict[int, tuple[int, int]] = {}  # flat child node -> (flat parent, token)
    items, item_nodes = [], []
    for r, row in enumerate(rows):
        n = len(row.tokens)
        inp[r, :n] = row.tokens
        pos[r, :n] = row.depth
        allowed[r] = _ancestor_mask(row.parent, N)
        for i, path in zip(row.items, row.paths):
            nodes = [r * N + c for c in path[firsts[i]:]]
            for c in path[firsts[i]:]:
                scored[r * N + c] = (r * N + row.parent[c], row.tokens[c])
            items.append(i)
            item_nodes.append(nodes)
    children = sorted(scored, key=lambda c: (scored[c][0], c))
    entry_of = {c: e for e, c in enumerate(children)}
    parents = np.array([scored[c][0] for c in children], dtype=np.int64)
    hidden = np.unique(parents)
    return PackedBatch(
        items=items, input_ids=torch.from_numpy(inp), attention_mask=torch.from_numpy(allowed),
        position_ids=torch.from_numpy(pos), hidden_index=torch.from_numpy(hidden),
        entry_hidden=torch.from_numpy(np.searchsorted(hidden, parents).astype(np.int64)),
        entry_target=torch.tensor([scored[c][1] for c in children], dtype=torch.int64),
        item_entries=[np.array([entry_of[c] for c in nodes], dtype=np.int64) for nodes in item_nodes],
        max_depth=max(max(r.depth) + 1 for r in rows),
    )


def tree_batches(seqs: list[np.ndarray], firsts: list[int], *, batch_size: int, max_batch_tokens: int | None,
                 pad_id: int, row_tokens: int = 128) -> list[PackedBatch]:
    """Prefix-tree rows of at most ``row_tokens`` nodes (and ``max_batch_tokens``), sorted by node count
    and cut into batches of at most ``batch_size`` sequences and ``max_batch_tokens`` padded positions.
    Sequences with nothing to score are left out (the plan gives them an empty result)."""
    if row_tokens < 1:
        raise ValueError(f"row_tokens must be >= 1, got {row_tokens}")
    budget = row_tokens if max_batch_tokens is None else min(row_tokens, max_batch_tokens)
    keep = [i for i in range(len(seqs)) if len(seqs[i]) > firsts[i]]
    order = sorted(keep, key=lambda i: (seqs[i].tolist(), i))
    rows = _tree_rows(seqs, order, budget)
    rows = [rows[k] for k in sorted(range(len(rows)), key=lambda k: (len(rows[k].tokens), k))]
    groups = _greedy_groups([len(r.tokens) for r in rows], [len(r.items) for r in rows], batch_size,
                            max_batch_tokens)
    return [_tree_batch([rows[g] for g in group], firsts, pad_id) for group in groups]
