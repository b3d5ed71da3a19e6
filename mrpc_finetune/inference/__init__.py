"""Using a finished run or an ensemble of runs: ``eval`` and ``predict`` over their saved models, and the averaging
of probabilities over sentence orders and members. May import ``run`` and the layers below it; not ``train`` (a
finished run needs no training code) nor ``experiments``. ``train`` imports ``averaging`` from here, so that the end
of a run scores both orders exactly as ``eval`` does."""
