"""Many runs at once: repeat (seeds), search (Optuna), compare, and the reports and curves they write. May
import ``train`` and everything below it; only ``cli`` imports this."""
