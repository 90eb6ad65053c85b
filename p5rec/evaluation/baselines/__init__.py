"""Baselines fitted on the same splits as the model, for the evaluation report.

Ranking baselines (:class:`MostPop`, :class:`ItemKNN`, :class:`BPRMF`, :class:`SASRec`) share one interface,
:class:`Ranker`: ``fit(train_sequences, items)`` then
``recommend(histories, k, exclude_seen=True)``. :class:`BiasedMF` predicts ratings;
:func:`lead_sentence` is the summarization baseline, :class:`RetrievalExplainer` the explanation one.
"""

from p5rec.evaluation.baselines._ranking import Ranker
from p5rec.evaluation.baselines.bpr import BPRMF, BPRConfig
from p5rec.evaluation.baselines.mf import BiasedMF, BiasedMFConfig
from p5rec.evaluation.baselines.neighbors import ItemKNN, MostPop
from p5rec.evaluation.baselines.sasrec import SASRec, SASRecConfig
from p5rec.evaluation.baselines.text import RetrievalExplainer, lead_sentence

__all__ = [
    "BPRMF",
    "BPRConfig",
    "BiasedMF",
    "BiasedMFConfig",
    "ItemKNN",
    "MostPop",
    "Ranker",
    "RetrievalExplainer",
    "SASRec",
    "SASRecConfig",
    "lead_sentence",
]
