"""``python -m mrpc_finetune ...`` (also under ``accelerate launch -m mrpc_finetune ...``)."""

import sys

from mrpc_finetune.cli import main

sys.exit(main())
