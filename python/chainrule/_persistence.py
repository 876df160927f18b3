"""How a :class:`chainrule.Network` is stored: its constructor arguments as a config, its
files (:mod:`chainrule.io`), and its pickles (only arrays, plain values and the generator, no
backend objects; an older pickle is brought up to date when it is loaded)."""

from __future__ import annotations

from . import io
from ._parameters import ParameterDict
from .backends.registry import Ops, choose_backend


class Persistent:
    """``get_config``/``from_config``, ``save``/``load`` and ``__getstate__``/``__setstate__``
    of :class:`chainrule.Network` (a mixin)."""

    def get_config(self):
        """The constructor arguments as JSON-compatible values; ``Network.from_config`` inverts it."""
        config = {
            "layer_dims": list(self.layer_dims),
            "activations": [[name, alpha] for name, alpha in self.activations],
            "loss": self.loss,
            "init": self.init,
            "seed": self.seed,
            "dtype": self.dtype.name,
            "backend": self._backend_request,
            "n_threads": self.n_threads,
        }
        if any(self.batch_norm):  # (a config without these keys: no batch norm)
            config.update(batch_norm=list(self.batch_norm[:-1]),
                          batch_norm_momentum=self.batch_norm_momentum,
                          batch_norm_epsilon=self.batch_norm_epsilon,
                          batch_norm_unbiased=self.batch_norm_unbiased)
        return config

    @classmethod
    def from_config(cls, config):
        """A new network (freshly initialised) from :meth:`get_config`'s output."""
        config = dict(config)
        config["activations"] = [tuple(a) if isinstance(a, (list, tuple)) else a
                                 for a in config["activations"]]
        return cls(**config)

    def save(self, path):
        """Save to ``path`` atomically (``.npz`` + JSON metadata, no pickle); see :func:`chainrule.io.save`."""
        return io.save(self, path)

    @classmethod
    def load(cls, path, backend=None):
        """A network from a :meth:`save`'d file; raises ``ModelFileError`` for a bad file.

        ``backend`` overrides the saved backend request; by default the saved one is used,
        or ``"auto"`` with a warning when it is not available here.
        """
        return io.restore(cls, path, backend)

    # ------------------------------------------------------------------ pickles
    def __getstate__(self):
        # No backend objects in a pickle: only arrays, plain values and the generator.
        state = dict(self.__dict__)
        state.pop("_ops", None)
        state["_parameters"] = dict(self._parameters)
        state.pop("_fitting", None)
        state.pop("_step_plan", None)  # caches: the step's plan, the last fit's backend
        state.pop("_fit_backend", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("n_threads", None)  # pickled before n_threads existed
        # pickled before batch norm existed
        self.__dict__.setdefault("batch_norm", [False] * (len(self.layer_dims) - 1))
        self.__dict__.setdefault("batch_norm_momentum", 0.9)
        self.__dict__.setdefault("batch_norm_epsilon", 1e-5)
        self.__dict__.setdefault("batch_norm_unbiased", True)
        self.__dict__.setdefault("_running", {})
        self._parameters = ParameterDict(self._parameters, self)
        self._upgrade_pickled_training_state()
        try:
            self._ops = Ops(self.backend)
        except ImportError:  # unpickled where that backend is missing: let the policy choose
            self.backend = choose_backend(self.layer_dims, None, self.dtype, "auto")
            self._ops = Ops(self.backend)
