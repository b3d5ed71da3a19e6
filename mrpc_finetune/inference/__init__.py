"""Using a finished run: ``eval`` and ``predict`` over its saved model. May import ``run`` and the layers below
it; not ``train`` (a finished run needs no training code) nor ``experiments``."""
