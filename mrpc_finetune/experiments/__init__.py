"""Many runs at once: repeat (seeds), search (Optuna), compare, ensemble, and the reports and curves they write.
May import ``train``, ``inference`` and everything below them; only ``cli`` imports this."""
