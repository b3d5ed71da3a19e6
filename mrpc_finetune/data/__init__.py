"""Data: local files or the Hub into checked ``datasets`` splits (loading, checks) less the rows ``data.exclude``
names (exclusion), tokenized (tokenization), then the batch order and padding (batching). May import ``recipe``,
``errors`` and ``hub``; nothing above it."""
