"""The data pipeline: the course's reference batch on real MRPC, and batch shapes on small fixtures."""

from __future__ import annotations

import numpy as np
import pytest

from mrpc_finetune.data import batching, loading, tokenization
from mrpc_finetune.data import checks as data_checks
from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe import DataConfig, ModelConfig
from mrpc_finetune.recipe.tasks import get_task

from .conftest import SHARED_MRPC, requires_shared_mrpc, write_jsonl

MRPC = get_task("mrpc")


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from mrpc_finetune.models import load_tokenizer

    return load_tokenizer(ModelConfig(name=minilm_path))


@requires_shared_mrpc
def test_reference_batch_on_real_mrpc(tokenizer):
    """Hugging Face course ch. 3: train[:8] -> lengths [50, 59, 47, 67, 59, 50, 62, 32] -> a [8, 67] batch."""
    cfg = DataConfig(dir=str(SHARED_MRPC))
    raw = loading.load_raw_splits(cfg, MRPC)
    assert raw["train"].num_rows == 3668 and raw["validation"].num_rows == 408
    train = tokenization.tokenize_split(raw["train"], tokenizer, MRPC, cfg)
    first8 = [train[i] for i in range(8)]
    assert [len(row["input_ids"]) for row in first8] == [50, 59, 47, 67, 59, 50, 62, 32]
    assert set(first8[0]["token_type_ids"]) == {0, 1}  # a pair: segment ids mark the second sentence
    batch = batching.make_collator(tokenizer)(first8)
    assert {k: list(v.shape) for k, v in batch.items()} == {
        "input_ids": [8, 67],
        "token_type_ids": [8, 67],
        "attention_mask": [8, 67],
        "labels": [8],
    }


@requires_shared_mrpc
def test_default_sampler_pads_little_on_real_mrpc(tokenizer):
    cfg = DataConfig(dir=str(SHARED_MRPC))
    train = tokenization.tokenize_split(loading.load_raw_splits(cfg, MRPC)["train"], tokenizer, MRPC, cfg)
    lengths = batching.token_lengths(train)
    grouped = batching.padding_efficiency(
        lengths, batching.batches_of(batching.make_train_sampler(lengths, 32, "group_by_length", 0), 32)
    )
    shuffled = batching.padding_efficiency(
        lengths, batching.batches_of(batching.make_train_sampler(lengths, 32, "random", 0), 32)
    )
    assert grouped >= 0.97 > 0.75 > shuffled


def test_single_sentence_task(tmp_path, tokenizer):
    sst2 = get_task("sst2")
    write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"sentence": "a fine film", "label": 1, "idx": 0},
            {"sentence": "dull and far too long", "label": 0, "idx": 1},
        ],
    )
    raw = loading.load_raw_splits(DataConfig(task="sst2", dir=str(tmp_path)), sst2)
    tokenized = tokenization.tokenize_split(raw["train"], tokenizer, sst2, DataConfig(task="sst2"))
    assert set(tokenized[0]["token_type_ids"]) == {0}  # one segment
    batch = batching.make_collator(tokenizer)([tokenized[0], tokenized[1]])
    assert list(batch["input_ids"].shape) == [2, 7]  # [CLS] dull and far too long [SEP]
    assert batch["labels"].tolist() == [1, 0]


def test_truncation_at_max_length(tmp_path, tokenizer):
    long_text = " ".join(["word"] * 300)
    write_jsonl(tmp_path / "train.jsonl", [{"sentence1": long_text, "sentence2": "short one", "label": 0, "idx": 0}])
    cfg = DataConfig(dir=str(tmp_path), max_length=32)
    tokenized = tokenization.tokenize_split(loading.load_raw_splits(cfg, MRPC)["train"], tokenizer, MRPC, cfg)
    ids = tokenized[0]["input_ids"]
    assert len(ids) == 32
    assert tokenized[0]["token_type_ids"][-3:] == [1, 1, 1]  # the long first text was cut, the short pair kept


def test_pad_to_multiple_of_8(tokenizer):
    rows = [tokenizer("one two three", "four"), tokenizer("one", "two")]
    batch = batching.make_collator(tokenizer, pad_to_multiple_of=8)(rows)
    assert list(batch["input_ids"].shape) == [2, 8]
    assert batch["attention_mask"].sum().item() == len(rows[0]["input_ids"]) + len(rows[1]["input_ids"])


def test_padding_efficiency_arithmetic():
    lengths = [10, 10, 5, 15]
    assert batching.padding_efficiency(lengths, [[0, 1], [2, 3]]) == pytest.approx(40 / (20 + 30))
    assert batching.padding_efficiency(lengths, [[0, 1], [2, 3]], pad_to_multiple_of=8) == pytest.approx(40 / (32 + 32))


def test_samplers_cover_every_row_once():
    lengths = [(i * 37) % 101 + 1 for i in range(500)]
    for strategy in ("group_by_length", "random"):
        assert sorted(batching.make_train_sampler(lengths, 16, strategy, seed=1)) == list(range(500))
    first = list(batching.make_train_sampler(lengths, 16, "group_by_length", seed=1))
    again = list(batching.make_train_sampler(lengths, 16, "group_by_length", seed=1))
    other = list(batching.make_train_sampler(lengths, 16, "group_by_length", seed=2))
    assert first == again and first != other  # seeded, and shuffled between seeds


SKEWED_LENGTHS = [(i * 37) % 101 + 1 for i in range(500)]


def test_length_buckets_every_row_once_per_epoch_in_full_batches():
    sampler = batching.make_train_sampler(SKEWED_LENGTHS, 16, "group_by_length", seed=3)
    for _ in range(3):
        order = list(sampler)
        assert sorted(order) == list(range(500)) and len(sampler) == 500
        batches = batching.batches_of(order, 16)  # what the DataLoader does with the stream
        assert [len(b) for b in batches[:-1]] == [16] * 31 and len(batches[-1]) == 500 % 16  # the short one is last
        assert batching.padding_efficiency(SKEWED_LENGTHS, batches) > 0.9


def test_length_buckets_change_order_every_epoch_and_seed_but_repeat_exactly():
    sampler = batching.LengthBucketSampler(SKEWED_LENGTHS, 16, seed=1)
    epochs = [list(sampler) for _ in range(3)]  # without set_epoch each iteration is the next epoch
    assert len({tuple(e) for e in epochs}) == 3
    sampler.set_epoch(1)  # what the Trainer and the loops call; a resumed run replays the same epoch
    assert list(sampler) == epochs[1]
    same_seed = batching.LengthBucketSampler(SKEWED_LENGTHS, 16, seed=1)  # another process of a distributed run
    assert list(same_seed) == epochs[0]
    assert list(batching.LengthBucketSampler(SKEWED_LENGTHS, 16, seed=2)) != epochs[0]


def test_length_buckets_order_does_not_follow_length():
    """The batch order is shuffled: the mean length of the batches is not sorted, nor correlated with position."""
    sampler = batching.LengthBucketSampler(SKEWED_LENGTHS, 16, seed=0, mega_batch=None)
    for epoch in range(5):
        means = [np.mean([SKEWED_LENGTHS[i] for i in b]) for b in sampler.batches(epoch)[:-1]]
        assert means != sorted(means) and means != sorted(means, reverse=True)
        assert abs(np.corrcoef(np.arange(len(means)), means)[0, 1]) < 0.5
    assert len({tuple(sampler.batches(e)[-1]) for e in range(5)}) == 5  # the short last batch is not always the longest


def test_length_buckets_shard_across_processes_with_accelerate():
    """Two processes with the same seed: accelerate deals out the batches; together they cover every row."""
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader

    seen = []
    for rank in range(2):
        sampler = batching.make_train_sampler(SKEWED_LENGTHS, 16, "group_by_length", seed=5)
        loader = DataLoader(range(500), batch_size=16, sampler=sampler)
        shard = prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False)
        shard.set_epoch(2)
        batches = [b.tolist() for b in shard]
        assert batching.padding_efficiency(SKEWED_LENGTHS, batches) > 0.9
        seen += [i for b in batches for i in b]
    assert set(seen) == set(range(500))


def test_eval_order_is_longest_first():
    lengths = [5, 9, 1, 9, 3]
    assert batching.length_sorted_order(lengths) == [1, 3, 0, 4, 2]


def test_tab_files_keep_quotes_and_every_row(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text(
        "sentence1\tsentence2\tlabel\tidx\n"
        'He said "yes\tShe said no\t0\t0\n'
        '"Quoted" start\tplain\t1\t1\n'
        'a "b" c\td\t1\t2\n'
    )
    split = loading.load_split_file(tsv)
    assert split.num_rows == 3
    assert split["sentence1"] == ['He said "yes', '"Quoted" start', 'a "b" c']


def test_missing_column_names_file_and_columns(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text_a": "x", "sentence2": "y", "label": 0}])
    with pytest.raises(
        UserError, match=r"train.jsonl: missing column 'sentence1' \(columns found: text_a, sentence2, label\)"
    ):
        loading.load_raw_splits(DataConfig(dir=str(tmp_path)), MRPC)


def test_label_out_of_range_names_row(tmp_path):
    write_jsonl(
        tmp_path / "train.jsonl",
        [{"sentence1": "a", "sentence2": "b", "label": 0}, {"sentence1": "a", "sentence2": "b", "label": 2}],
    )
    with pytest.raises(UserError, match="row 2, column 'label' has 2"):
        loading.load_raw_splits(DataConfig(dir=str(tmp_path)), MRPC)


def test_missing_folder_and_train_file(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        loading.load_raw_splits(DataConfig(dir=str(tmp_path / "nope")), MRPC)
    (tmp_path / "validation.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="no train"):
        loading.load_raw_splits(DataConfig(dir=str(tmp_path)), MRPC)


def test_map_cache_is_reused(tmp_path, tokenizer):
    write_jsonl(
        tmp_path / "train.jsonl", [{"sentence1": f"s {i}", "sentence2": "t", "label": i % 2} for i in range(20)]
    )
    cfg = DataConfig(dir=str(tmp_path))
    first = tokenization.tokenize_split(loading.load_split_file(tmp_path / "train.jsonl"), tokenizer, MRPC, cfg)
    second = tokenization.tokenize_split(loading.load_split_file(tmp_path / "train.jsonl"), tokenizer, MRPC, cfg)
    assert first._fingerprint == second._fingerprint
    assert first.cache_files and first.cache_files == second.cache_files  # the second run read the first's cache


def test_a_test_split_is_labelled_unless_glue_marks_it_minus_one(tmp_path):
    task = get_task("mrpc")
    rows = [{"sentence1": "a b", "sentence2": "c d", "label": label, "idx": i} for i, label in enumerate([1, 0, 1])]
    labelled = loading.load_split_file(write_jsonl(tmp_path / "a.jsonl", rows))
    withheld = loading.load_split_file(write_jsonl(tmp_path / "b.jsonl", [{**r, "label": -1} for r in rows]))
    mixed = loading.load_split_file(write_jsonl(tmp_path / "c.jsonl", [*rows[:2], {**rows[2], "label": -1}]))
    assert data_checks.is_labelled(labelled, task, "a.jsonl") and not data_checks.is_labelled(withheld, task, "b.jsonl")
    with pytest.raises(
        UserError, match=r"c.jsonl: row 3, column 'label' is -1 \(no label\) but other rows are labelled"
    ):
        data_checks.is_labelled(mixed, task, "c.jsonl")


def test_swapped_pairs_follow_every_row(tmp_path):
    rows = [{"sentence1": f"first {i}", "sentence2": f"second {i}", "label": i % 2, "idx": i} for i in range(3)]
    dataset = loading.load_split_file(write_jsonl(tmp_path / "train.jsonl", rows))
    doubled = loading.with_swapped_pairs(dataset, get_task("mrpc"))
    assert doubled.column_names == dataset.column_names and doubled.num_rows == 6
    assert doubled[3] == {**rows[0], "sentence1": "second 0", "sentence2": "first 0"}
    assert doubled["label"] == [0, 1, 0, 0, 1, 0]


def test_the_saved_tokenizer_is_the_same_whether_the_tokenization_ran_or_came_from_the_cache(tmp_path, minilm_path):
    """A tokenizer keeps the padding and truncation of its last call and saves them in tokenizer.json: a run whose
    tokenization came from the datasets cache made no call. Both must save the same file."""
    from mrpc_finetune.models import load_tokenizer

    rows = [{"sentence1": f"s {i} " * 40, "sentence2": "t", "label": i % 2} for i in range(20)]
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "train.jsonl", rows)
    cfg = DataConfig(dir=str(tmp_path / "data"), max_length=32)
    saved = []
    for attempt in ("ran", "cached"):  # a new tokenizer each time, as in a new run
        tokenizer = load_tokenizer(ModelConfig(name=minilm_path))
        tokenization.tokenize_split(loading.load_split_file(tmp_path / "data" / "train.jsonl"), tokenizer, MRPC, cfg)
        tokenizer.save_pretrained(tmp_path / attempt)
        saved.append((tmp_path / attempt / "tokenizer.json").read_bytes())
    assert saved[0] == saved[1]
