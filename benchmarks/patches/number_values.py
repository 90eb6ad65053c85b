"""Numbers read by value: a one-off ablation of the rating plateau (docs/benchmarks.md, "Ratings").

Patches p5rec's scratch models so that every one-decimal number in a prompt ("4 . 3" after the
tokenizer splits digits) adds `(value - 3) / 2` times a learned direction to the embedding of its
last digit (xVal's idea: a number's value as a direction, not only its digit tokens), then runs
`p5rec` with the given arguments. The direction lives only in the training process (the saved model
does not keep it), so compare the validation RMSE in `model-train/train_log.jsonl`. Usage:

    python benchmarks/patches/number_values.py train --data data/gift_cards --output OUT ...
"""

import sys

import torch
from torch import nn

import p5rec.modeling.backbone as backbone
import p5rec.pipeline as pipeline
from p5rec.cli.main import main

real = backbone.build_scratch_model


def build(config, tokenizer, seed=0):
    model = real(config, tokenizer, seed)
    emb = model.get_input_embeddings()
    lut = torch.full((len(tokenizer),), -1.0)
    for d, i in enumerate(tokenizer.convert_tokens_to_ids([str(d) for d in range(10)])):
        lut[i] = float(d)
    dot = tokenizer.convert_tokens_to_ids(".")
    emb.register_buffer("digit_lut", lut, persistent=False)
    emb.number_direction = nn.Parameter(torch.randn(emb.embedding_dim) * 0.02)

    def add_values(module, inputs, output):
        ids = inputs[0]
        if ids.shape[1] < 3:
            return output
        d = module.digit_lut[ids]
        last = torch.zeros_like(d, dtype=torch.bool)  # "D . D": the second digit
        last[:, 2:] = (d[:, 2:] >= 0) & (ids[:, 1:-1] == dot) & (d[:, :-2] >= 0)
        value = torch.zeros_like(d)
        value[:, 2:] = d[:, :-2] + d[:, 2:] / 10
        scaled = torch.where(last, (value - 3.0) / 2.0, torch.zeros_like(value))
        return output + scaled.unsqueeze(-1).to(output.dtype) * module.number_direction

    emb.register_forward_hook(add_values)
    return model


backbone.build_scratch_model = pipeline.build_scratch_model = build
sys.exit(main(sys.argv[1:]))
