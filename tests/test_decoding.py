"""Tests for p5rec.decoding: tensor trie, processors, constrained beam search, exact scorers."""

from __future__ import annotations

import io
import random

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    LogitsProcessorList,
    T5Config,
    T5ForConditionalGeneration,
)

from p5rec.decoding import (
    CandidateItemsLogitsProcessor,
    ExcludeItemsLogitsProcessor,
    ItemTrie,
    TrieConstraintLogitsProcessor,
    answer_distribution,
    answer_trie,
    expected_rating,
    predict_rating,
    rating_distribution,
    recommend_items,
    reference_recommend_items,
    score_items,
)

V = 48  # tiny vocabulary: 0 pad, 1 eos, 2 unk/bos, the rest free
EOS = 1


def _t5(seed: int = 0, vocab: int = V) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=vocab, d_model=32, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=16,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=EOS,
    )  # fmt: skip
    return T5ForConditionalGeneration(config).eval()


def _gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=2, eos_token_id=EOS)
    return GPT2LMHeadModel(config).eval()


def _llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, bos_token_id=2, eos_token_id=EOS, pad_token_id=0,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


MODELS = {"t5": _t5(), "gpt2": _gpt2(), "llama": _llama()}


def _catalog(n: int, seed: int = 0, prefix: tuple[int, ...] = (10, 11)) -> list[list[int]]:
    """`n` distinct ID sequences sharing `prefix`, with 1-3 further tokens (variable lengths)."""
    rng, seqs = random.Random(seed), set()
    while len(seqs) < n:
        seqs.add((*prefix, *(rng.randrange(3, 20) for _ in range(rng.randint(1, 3)))))
    return [list(s) for s in sorted(seqs)]


def _batch(model, rows: int = 3, width: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random prompts with padding: right-padded for encoder-decoder, left-padded for decoder-only."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (rows, width), generator=gen)
    mask = torch.ones_like(ids)
    if model.config.is_encoder_decoder:
        mask[1, width - 3 :] = 0
    else:
        mask[1, :3] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def _assert_same_ranking(ours, ref, atol: float = 1e-4) -> None:
    """Equal item lists and scores; an item swap is tolerated only between near-tied scores."""
    assert len(ours) == len(ref)
    for row_o, row_r in zip(ours, ref, strict=True):
        assert len(row_o) == len(row_r)
        for (io_, so), (ir, sr) in zip(row_o, row_r, strict=True):
            assert so == pytest.approx(sr, abs=atol)
            if io_ != ir:
                assert dict(row_r).get(io_, -1e9) == pytest.approx(so, abs=atol)


# ----------------------------------------------------------------------------------------- trie


def test_trie_structure_and_forced_prefix():
    trie = ItemTrie([[5, 7, 3], [5, 7, 4], [5, 7, 3, 3]], eos_token_id=EOS)
    assert trie.forced_prefix == (5, 7)
    assert (trie.num_items, trie.max_length) == (3, 5)
    assert int(trie.items_under[0]) == 3
    s = trie.state_of([5, 7, 3])
    tokens, nxt, valid = trie.children(torch.tensor([s, -1]), depth=3)
    assert sorted(tokens[0][valid[0]].tolist()) == [EOS, 3]
    assert not valid[1].any()  # a dead beam has no children
    leaf = trie.state_of([5, 7, 3, 3, EOS])
    assert int(trie.leaf_item[leaf]) == 2
    assert trie.walk(torch.tensor([[5, 7, 4, EOS], [5, 9, 4, EOS]])).tolist() == [trie.state_of([5, 7, 4, EOS]), -1]
    assert trie.state_of([6]) == -1


def test_trie_without_shared_prefix_has_empty_forced_prefix():
    assert ItemTrie([[5, 7], [6]], eos_token_id=EOS).forced_prefix == ()


def test_trie_wide_root_is_not_dense():
    # One added token per item: the root has 20k children; storage must stay O(items), not states x vocab.
    n = 20_000
    trie = ItemTrie([[100 + i] for i in range(n)], eos_token_id=EOS)
    assert trie.width_at(0) == n and trie.width_at(1) == 1
    stored = sum(v.numel() for v in vars(trie).values() if isinstance(v, torch.Tensor))
    assert stored < 20 * n
    tokens, _, valid = trie.children(torch.tensor([0]), depth=0)
    assert valid.all() and tokens[0, -1].item() == 100 + n - 1


@pytest.mark.parametrize(
    ("sequences", "error", "match"),
    [
        ([], ValueError, "`sequences` is empty"),
        ([[5, 6], [5, 6]], ValueError, r"must be distinct, but items 0 and 1 are both \[5, 6\]"),
        ([[5, EOS, 6]], ValueError, r"`sequences\[0\]` \(\[5, 1, 6\]\) contains `eos_token_id` \(1\)"),
        ([[5], []], ValueError, r"`sequences\[1\]` is empty"),
        ([[5], [-3]], ValueError, "negative token id"),
        ("item_1", TypeError, "must be a list of token-id lists"),
        ([[5], "ab"], TypeError, r"`sequences\[1\]` must be a list of token ids"),
        ([[5.5]], TypeError, "must hold integer token ids"),
    ],
)
def test_trie_rejects_bad_catalogs(sequences, error, match):
    with pytest.raises(error, match=match):
        ItemTrie(sequences, eos_token_id=EOS)


def test_trie_rejects_bad_eos():
    with pytest.raises(ValueError, match=r"`eos_token_id` \(-1\) must be a non-negative int"):
        ItemTrie([[5]], eos_token_id=-1)


def test_count_under_rejects_out_of_range_items():
    trie = ItemTrie([[5], [6]], eos_token_id=EOS)
    with pytest.raises(ValueError, match=r"`exclude\[1\]` holds item index 7, outside \[0, 2\)"):
        trie.count_under([[0], [7]], name="exclude")


# ----------------------------------------------------------------------------------- processors


def test_processors_mask_without_editing_scores_in_place():
    trie = ItemTrie([[5, 7], [5, 8], [6, 7]], eos_token_id=EOS)
    scores = torch.zeros(2, 10)
    ids = torch.tensor([[0, 5], [0, 9]])  # row 1 has left the trie
    out = TrieConstraintLogitsProcessor(trie, prompt_length=1)(ids, scores)
    assert torch.isfinite(out[0]).nonzero().flatten().tolist() == [7, 8]
    assert torch.isinf(out[1]).all()
    out = ExcludeItemsLogitsProcessor(trie, exclude=[[0], [1]], prompt_length=1)(ids, scores)
    assert torch.isinf(out[0]).nonzero().flatten().tolist() == [7] and torch.isfinite(out[1]).all()
    out = CandidateItemsLogitsProcessor(trie, candidates=[[2]], prompt_length=1)(torch.tensor([[0]] * 2), scores)
    assert torch.isinf(out).nonzero()[:, 1].tolist() == [5, 5]  # item 2 lies under 6 only, for both beams
    assert (scores == 0).all()


def test_processors_in_generate_give_valid_items_and_respect_exclusion():
    model, seqs = MODELS["t5"], _catalog(10)
    trie = ItemTrie(seqs, eos_token_id=EOS)
    batch = _batch(model)
    exclude = [[0, 1, 2], [], list(range(9))]
    processors = LogitsProcessorList(
        [TrieConstraintLogitsProcessor(trie, prompt_length=1), ExcludeItemsLogitsProcessor(trie, exclude, 1)]
    )
    out = model.generate(
        **batch, num_beams=4, num_return_sequences=4, max_new_tokens=trie.max_length, logits_processor=processors,
        eos_token_id=EOS, pad_token_id=0, do_sample=False,
    )  # fmt: skip
    index = {(*s, EOS): i for i, s in enumerate(seqs)}
    for r, seq in enumerate(out[:, 1:].tolist()):
        item = index[tuple(seq[: seq.index(EOS) + 1])]
        assert item not in exclude[r // 4]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: TrieConstraintLogitsProcessor(t, prompt_length=-1), r"`prompt_length` \(-1\) must be an int >= 0"),
        (lambda t: TrieConstraintLogitsProcessor([[5]], prompt_length=1), "`trie` must be an ItemTrie, got list"),
        (lambda t: ExcludeItemsLogitsProcessor(t, [], 1), "`exclude` must be a non-empty list"),
        (lambda t: CandidateItemsLogitsProcessor(t, [[9]], 1), r"`candidates\[0\]` holds item index 9"),
    ],
)
def test_processor_argument_errors(make, match):
    trie = ItemTrie([[5], [6]], eos_token_id=EOS)
    with pytest.raises((ValueError, TypeError), match=match):
        make(trie)


def test_item_processor_rejects_mismatched_rows():
    proc = ExcludeItemsLogitsProcessor(ItemTrie([[5], [6]], eos_token_id=EOS), [[0], [1]], prompt_length=1)
    with pytest.raises(ValueError, match="`scores` has 3 rows, not a multiple of the 2 rows of `exclude`"):
        proc(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 10))


# ------------------------------------------------------------------------------ recommend_items


def test_untrained_model_returns_only_catalog_ids_where_unconstrained_decoding_is_junk(sp_tokenizer):
    tok = sp_tokenizer
    names = [f"item_{i}" for i in range(1, 31)]
    seqs = [tok(n, add_special_tokens=False).input_ids for n in names]
    trie = ItemTrie(seqs, eos_token_id=tok.eos_token_id)
    model = _t5(seed=3, vocab=len(tok))
    batch = dict(tok(["user_7 bought item_3 item_12 , next ?", "what does user_2 buy next ?"], padding=True,
                     return_tensors="pt"))  # fmt: skip
    free = model.generate(**batch, num_beams=5, max_new_tokens=trie.max_length, do_sample=False)
    junk = tok.batch_decode(free, skip_special_tokens=True)
    assert not set(junk) & set(names), junk  # e.g. repeated pieces, not an ID
    results = recommend_items(model, batch, trie, k=5, num_beams=5)
    for row in results:
        assert len(row) == 5
        decoded = [tok.decode(seqs[i], skip_special_tokens=True) for i, _ in row]
        assert set(decoded) <= set(names)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_matches_prefix_allowed_tokens_fn_reference(kind):
    model, seqs = MODELS[kind], _catalog(15, seed=1)
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model)
    ours = recommend_items(model, batch, trie, k=5, num_beams=6)
    ref = reference_recommend_items(model, batch, seqs, EOS, k=5, num_beams=6)
    _assert_same_ranking(ours, ref)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_full_beam_equals_brute_force_ranking(kind):
    model, seqs = MODELS[kind], _catalog(12, seed=2)
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model)
    scores = score_items(model, batch, trie, item_batch_size=7)
    results = recommend_items(model, batch, trie, k=12, num_beams=12)
    for r, row in enumerate(results):
        assert [i for i, _ in row] == scores[r].argsort(descending=True).tolist()
        assert [s for _, s in row] == pytest.approx(scores[r].sort(descending=True).values.tolist(), abs=1e-4)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_padding_does_not_change_results(kind):
    model, seqs = MODELS[kind], _catalog(10)
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model)
    keep = batch["attention_mask"][1].bool()
    alone = {"input_ids": batch["input_ids"][1:2, keep], "attention_mask": batch["attention_mask"][1:2, keep]}
    _assert_same_ranking(
        [recommend_items(model, batch, trie, k=4, num_beams=5)[1]], recommend_items(model, alone, trie, 4, 5)
    )


def test_exclude_and_candidates_are_exact():
    model, seqs = MODELS["t5"], _catalog(15, seed=4)
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model)
    top = recommend_items(model, batch, trie, k=3, num_beams=15)
    exclude = [[i for i, _ in row] for row in top]
    got = recommend_items(model, batch, trie, k=5, num_beams=8, exclude=exclude)
    for row, ex in zip(got, exclude, strict=True):
        assert len(row) == 5 and not {i for i, _ in row} & set(ex)
    _assert_same_ranking(got, reference_recommend_items(model, batch, seqs, EOS, 5, 8, exclude=exclude))
    candidates = [[0, 3, 14], [2, 9, 4], [5, 6, 7, 8]]
    got = recommend_items(model, batch, trie, k=3, num_beams=5, candidates=candidates, exclude=[[3], [], [6]])
    assert [sorted(i for i, _ in row) for row in got] == [[0, 14], [2, 4, 9], [5, 7, 8]]  # excluded: fewer, no junk


def test_everything_excluded_returns_empty_rows():
    model, seqs = MODELS["gpt2"], _catalog(6)
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model, rows=2)
    got = recommend_items(model, batch, trie, k=3, num_beams=4, exclude=[list(range(6)), [1]])
    assert got[0] == [] and len(got[1]) == 3 and 1 not in {i for i, _ in got[1]}


def test_max_new_tokens_drops_longer_ids():
    model, seqs = MODELS["t5"], [[10, 11, 3], [10, 11, 3, 4, 5], [10, 11, 6]]
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model)
    got = recommend_items(model, batch, trie, k=3, num_beams=3, max_new_tokens=4)
    assert all(sorted(i for i, _ in row) == [0, 2] for row in got)


def test_model_mode_is_restored():
    model = _t5()
    model.train()
    recommend_items(model, _batch(model), ItemTrie(_catalog(4), eos_token_id=EOS), k=2, num_beams=2)
    assert model.training


@settings(
    max_examples=25, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
@given(
    catalog=st.lists(st.lists(st.integers(3, V - 1), min_size=1, max_size=4), min_size=1, max_size=12, unique_by=tuple),
    k=st.integers(1, 6),
    extra_beams=st.integers(0, 3),
    seed=st.integers(0, 3),
    prefix=st.sampled_from([(), (20,), (20, 21)]),
)
def test_property_results_are_distinct_valid_sorted_and_match_reference(catalog, k, extra_beams, seed, prefix):
    model = MODELS["t5"]
    catalog = [[*prefix, *seq] for seq in catalog]
    trie, batch = ItemTrie(catalog, eos_token_id=EOS), _batch(model, rows=2, seed=seed)
    k = min(k, len(catalog))  # a larger k is refused (`p5rec.decoding.beams`)
    ours = recommend_items(model, batch, trie, k=k, num_beams=k + extra_beams)
    scores = score_items(model, batch, trie)
    for r, row in enumerate(ours):
        items = [i for i, _ in row]
        assert len(items) == k and len(set(items)) == len(items)
        assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
        assert [s for _, s in row] == pytest.approx(scores[r, items].tolist(), abs=1e-4)
    _assert_same_ranking(ours, reference_recommend_items(model, batch, catalog, EOS, k, k + extra_beams))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(k=3, num_beams=2), ValueError, r"`num_beams` \(2\) must be >= `k` \(3\)"),
        (dict(k=5), ValueError, r"`k` \(5\) must be an integer between 1 and the catalog size \(4\)"),
        (dict(k=3, candidates=[[0, 1], [0, 1, 2], [1, 2, 3]]), ValueError, r"`k` \(3\) must be at most .*\(2\)"),
        (dict(k=0), ValueError, r"`k` \(0\) must be a positive int"),
        (dict(k=1, max_new_tokens=0), ValueError, r"`max_new_tokens` \(0\) must be a positive int"),
        (dict(k=1, exclude=[[0]]), ValueError, "`exclude` has 1 lists but the batch has 3 rows"),
        (dict(k=1, candidates="0"), TypeError, "`candidates` must be a list with one list"),
        (dict(k=1, exclude=[[0], [99], []]), ValueError, r"`exclude\[1\]` holds item index 99"),
    ],
)
def test_recommend_items_argument_errors(kwargs, error, match):
    model = MODELS["t5"]
    with pytest.raises(error, match=match):
        recommend_items(model, _batch(model), ItemTrie(_catalog(4), eos_token_id=EOS), **kwargs)


def test_bad_batch_and_trie_errors():
    model, trie = MODELS["t5"], ItemTrie(_catalog(4), eos_token_id=EOS)
    with pytest.raises(ValueError, match="`batch` must be a dict with `input_ids`"):
        recommend_items(model, {"ids": torch.zeros(1, 2)}, trie, k=1)
    ids = torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"shape \(2, 2\) must equal `batch\['input_ids'\]` shape \(2, 3\)"):
        recommend_items(model, {"input_ids": ids, "attention_mask": torch.ones(2, 2)}, trie, k=1)
    with pytest.raises(TypeError, match="`trie` must be an ItemTrie, got list"):
        score_items(model, {"input_ids": ids, "attention_mask": ids}, [[5]])


# ------------------------------------------------------------------------------- exact scorers


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_score_items_equals_manual_teacher_forcing(kind):
    model, seqs = MODELS[kind], _catalog(5, seed=5)
    trie, batch = ItemTrie(seqs, eos_token_id=EOS), _batch(model, rows=2)
    scores = score_items(model, batch, trie, item_batch_size=3)
    assert scores.shape == (2, 5)
    for r in range(2):
        keep = batch["attention_mask"][r].bool()
        prompt = batch["input_ids"][r, keep][None]
        for i, seq in enumerate(seqs):
            target = torch.tensor([[*seq, EOS]])
            with torch.no_grad():
                if model.config.is_encoder_decoder:
                    logits = model(input_ids=prompt, labels=target).logits[0]
                else:
                    logits = model(input_ids=torch.cat([prompt, target], 1)).logits[0, prompt.shape[1] - 1 : -1]
            expected = logits.log_softmax(-1).gather(1, target[0][:, None]).sum()
            assert scores[r, i].item() == pytest.approx(expected.item(), abs=1e-4)


def test_rating_distribution_expected_and_greedy(sp_tokenizer):
    tok = sp_tokenizer
    model = _t5(seed=1, vocab=len(tok))
    batch = dict(tok(["how will user_3 rate item_7 ?", "rate item_2 for user_9"], padding=True, return_tensors="pt"))
    values = ("1.0", "2.0", "3.0", "4.0", "5.0")
    probs = rating_distribution(model, batch, tok, values)
    assert probs.shape == (2, 5) and torch.allclose(probs.sum(-1), torch.ones(2))
    expected = expected_rating(model, batch, tok, values)
    assert torch.allclose(expected, probs @ torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    greedy = predict_rating(model, batch, tok, values)
    assert all(g in values for g in greedy)
    with pytest.raises(ValueError, match=r"`values` \(\['1.0', '1.0'\]\) holds duplicates"):
        rating_distribution(model, batch, tok, ("1.0", "1.0"))
    with pytest.raises(ValueError, match="must all parse as numbers"):
        expected_rating(model, batch, tok, ("good", "bad"))


def test_answer_distribution_is_the_softmax_of_the_exact_answer_scores(sp_tokenizer):
    tok = sp_tokenizer
    model = _t5(seed=2, vocab=len(tok))
    batch = dict(tok(["would user_3 buy item_7 ?", "user_9 and item_2 ?"], padding=True, return_tensors="pt"))
    probs = answer_distribution(model, batch, tok, ("yes", "no"))
    scores = score_items(model, batch, answer_trie(tok, ("yes", "no")))
    assert probs.shape == (2, 2) and torch.allclose(probs, scores.softmax(-1))
    assert torch.allclose(probs[:, 0] / probs[:, 1], (scores[:, 0] - scores[:, 1]).exp(), rtol=1e-4)
    with pytest.raises(ValueError, match=r"`answers` must be a non-empty list of answer strings"):
        answer_distribution(model, batch, tok, "yes")


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sp_tokenizer():
    """A T5Tokenizer over a SentencePiece unigram model trained in-process (split digits, eos=1)."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    corpus = [f"user_{u} bought item_{i} and rated it {r}.0 ." for u in range(40) for i, r in [(u % 30, u % 5 + 1)]]
    corpus += ["what does the user buy next ?", "how will the user rate the item ?"] * 5
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=buf, vocab_size=120, hard_vocab_limit=False, pad_id=0,
        eos_id=1, unk_id=2, bos_id=-1, split_digits=True, minloglevel=2,
    )  # fmt: skip
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    return T5Tokenizer(vocab=[(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())], extra_ids=0)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_next_item_percentile_reads_the_distribution_after_the_last_history_item(kind):
    from p5rec.decoding.affinity import next_item_percentile

    model = _gpt2() if kind == "gpt2" else _llama()
    items = torch.arange(20, 30)  # item k is token 20 + k
    # Words (3..9), history items, the asked item; the second row is shorter, so left-padded.
    rows = [[3, 4, 21, 5, 22, 23, 6, 7, 25], [3, 24, 5, 26, 6, 20]]
    asked = [5, 0]
    width = max(map(len, rows))
    batch = {
        "input_ids": torch.tensor([[0] * (width - len(r)) + r for r in rows]),
        "attention_mask": torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows]),
    }
    got = next_item_percentile(model, batch, items, asked)
    for row, ask, value, last in zip(rows, asked, got, (5, 3)):  # index of the last history item, unpadded
        with torch.no_grad():
            scores = model(input_ids=torch.tensor([row])).logits[0, last, items]
        assert value.item() == pytest.approx(float((scores < scores[ask]).sum()) / len(items))
    with pytest.raises(ValueError, match="prompt 0 holds no item besides the asked one"):
        next_item_percentile(model, {"input_ids": torch.tensor([[3, 4, 25]])}, items, [5])
    with pytest.raises(ValueError, match="`asked` has 1 items for 2 prompts"):
        next_item_percentile(model, batch, items, [5])


def test_visible_text_processor_bans_ids_and_an_end_before_a_visible_token():
    from p5rec.decoding.text import VisibleTextLogitsProcessor

    blank = torch.tensor([True, True, False, False, True])  # 0 eos, 1 "▁", 2 "good", 3 "<item_1>", 4 pad
    proc = VisibleTextLogitsProcessor(blank, banned=[3, 4, 0], eos_token_id=0)
    prompt = torch.tensor([[7, 7], [7, 7]])
    out = proc(prompt, torch.zeros(2, 6))  # first step: nothing written yet, no end; 5 is past the tokenizer
    assert torch.isinf(out[:, [0, 3, 4, 5]]).all() and not torch.isinf(out[:, [1, 2]]).any()
    out = proc(torch.tensor([[7, 7, 1], [7, 7, 2]]), torch.zeros(2, 6))  # row 0 wrote only "▁", row 1 a word
    assert torch.isinf(out[0, 0]) and not torch.isinf(out[1, 0])
