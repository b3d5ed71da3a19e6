"""Batched inference sorted by length (little padding), with results returned in the input order."""

from __future__ import annotations

import numpy as np
import torch

from mrpc_finetune.data.batching import length_sorted_order, token_lengths


def predict_logits(model, dataset, collator, batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Logits for every row of a tokenized dataset, in its row order."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    features = [c for c in ("input_ids", "token_type_ids", "attention_mask") if c in dataset.column_names]
    columns = {c: dataset[c] for c in features}
    order = length_sorted_order(token_lengths(dataset))  # the Trainer's evaluation order too
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = collator([{c: columns[c][i] for c in features} for i in rows])
            batch = {k: v.to(device) for k, v in batch.items()}
            chunks.append(model(**batch).logits.float().cpu().numpy())
    logits = np.concatenate(chunks) if chunks else np.zeros((0, model.config.num_labels), dtype=np.float32)
    restored = np.empty_like(logits)
    restored[order] = logits
    return restored
