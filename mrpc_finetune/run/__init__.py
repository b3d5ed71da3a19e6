"""The run directory and what is written about a run: its folder and checkpoints (rundir), provenance,
the trackers, the model card, push. May import ``recipe``, ``data``, ``models``, ``metrics`` and the bottom
helpers; never ``train``, ``inference``, ``experiments`` or ``cli``."""
