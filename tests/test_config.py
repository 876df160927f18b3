"""fit's arguments, defined once (chainrule.training.config): the signature and docstring
generated from it, validation, the positional call, and the checkpoint fingerprint."""

import dataclasses
import inspect

import pytest

from chainrule import Network
from chainrule.errors import InputError
from chainrule.training.config import POSITIONAL, FitConfig


def test_fit_signature_and_docstring_come_from_the_fields():
    sig = inspect.signature(Network.fit)
    fields = dataclasses.fields(FitConfig)
    assert list(sig.parameters)[3:] == [f.name for f in fields]
    for f in fields:
        p = sig.parameters[f.name]
        assert p.default == f.default
        assert (p.kind is p.POSITIONAL_OR_KEYWORD) == (f.name in POSITIONAL)
        assert f"\n        {f.name} : " in Network.fit.__doc__, f.name


def test_from_call_maps_positional_arguments_and_refuses_duplicates():
    c = FitConfig.from_call((5, 0.1), {"lambd": 0.2})
    assert (c.epochs, c.learning_rate, c.lambd) == (5, 0.1, 0.2)
    with pytest.raises(TypeError, match="multiple values"):
        FitConfig.from_call((5,), {"epochs": 6})
    with pytest.raises(TypeError, match="positional"):
        FitConfig.from_call(tuple(range(len(POSITIONAL) + 1)), {})
    with pytest.raises(TypeError):
        FitConfig.from_call((), {"epoch": 3})


def test_validated_normalises_every_field():
    c = FitConfig(mini_batch_size=8, keep_prob=0.5).validated(L=3)
    assert c.cost_every == 1 and c.keep_prob == [0.5, 0.5] and c.callbacks == []
    assert c.optimizer.name == "gd"
    assert FitConfig().validated(L=2).cost_every == 100  # full batch


@pytest.mark.parametrize("field,value", [("epochs", -1), ("learning_rate", 0.0),
                                         ("mini_batch_size", 0), ("lambd", -1.0),
                                         ("on_nonfinite", "ignore"), ("patience", -2),
                                         ("decay_interval", 0), ("validation_fraction", 1.5),
                                         ("dropout_rng", "philox")])
def test_validated_names_the_bad_argument(field, value):
    with pytest.raises(InputError, match=field):
        FitConfig(**{field: value}).validated(L=2)


def test_checkpoint_needs_a_positive_interval():
    with pytest.raises(InputError, match="checkpoint_every"):
        FitConfig(checkpoint="x.npz", checkpoint_every=0).validated(L=2)


def test_fingerprint_holds_exactly_the_arguments_a_resume_must_share():
    fp = FitConfig(keep_prob=[0.8], class_weight={0: 2.0}).validated(L=2).fingerprint()
    assert fp == {"epochs": 1000, "learning_rate": 0.0075, "cost_every": 100,
                  "optimizer": {"name": "gd"}, "mini_batch_size": None, "shuffle": True,
                  "shuffle_seed": None, "decay_rate": 0.0, "decay_interval": None,
                  "lambd": 0.0, "keep_prob": [0.8], "dropout_rng": "counter",
                  "validation_fraction": 0.0,
                  "early_stopping": False, "patience": 10, "min_delta": 0.0,
                  "restore_best": True, "on_nonfinite": "raise",
                  "class_weight": repr({0: 2.0})}
