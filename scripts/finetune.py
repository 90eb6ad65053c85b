"""Fine-tune a p5rec model from a YAML run config; the same as `p5rec train`.

    python scripts/finetune.py --config configs/musical_instruments_cpu.yaml
    accelerate launch --num_processes 2 scripts/finetune.py --config configs/beauty_t5_small.yaml
    accelerate launch scripts/finetune.py --config ... --resume          # after an interruption

Precision, process count, FSDP or DeepSpeed come from `accelerate config` / `--config_file`
(`train.mixed_precision` sets bf16/fp16 when launched without one).
"""

import sys

from p5rec.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
