"""``python -m mrpc_finetune ...`` (also under ``accelerate launch -m mrpc_finetune ...``)."""

import sys

from .cli import main

sys.exit(main())
