"""The estimator contract that recommenders and knowledge extractors share (scikit-learn style).

Hyperparameters are keyword arguments of ``__init__``, with their defaults written there and nowhere
else; the base stores each under its own name, and :meth:`Estimator.get_params` reads them back through
the signature, so a saved model records exactly what rebuilds it. What ``fit`` learns ends with ``_``;
using a model before ``fit`` raises :class:`NotFittedError`. ``save`` writes a folder atomically
(``meta.json``: class, format version, hyperparameters; ``state.npz``: arrays), and loading refuses a
folder that is missing, unreadable, of another class or from a newer recai with an error naming the
file. :class:`Registry` maps the names a CLI argument or a config uses to the classes.
"""

from __future__ import annotations

import importlib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from recai.data.atomic import atomic_directory
from recai.data.errors import DataError
from recai.data.jsonl import read_json_object
from recai.errors import RecaiError

if TYPE_CHECKING:
    import numpy as np

#: the concrete estimator class: ``fit`` returns self, ``load`` an instance of the class it is called on
E = TypeVar("E", bound="Estimator")
FORMAT_VERSION = 1
META_FILE = "meta.json"
STATE_FILE = "state.npz"


class NotFittedError(RuntimeError, RecaiError):
    """An estimator (a recommender, a knowledge extractor) was used before ``fit``."""


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Refuse a hyperparameter that is not one of ``choices``, listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")


def read_meta(
    path: str | Path, what: str, *, file: str = META_FILE, newest: int = FORMAT_VERSION
) -> dict[str, Any]:
    """The JSON object ``file`` that describes a saved folder (``what`` it should be, e.g. "a saved
    recommender"), checked to be readable and of a format no newer than ``newest``; every refusal
    names the file."""
    meta_path = Path(path) / file
    if not meta_path.exists():
        raise FileNotFoundError(f"{path} is not {what} ({file} missing)")
    meta = read_json_object(meta_path)
    if meta.get("format_version", 0) > newest:
        raise DataError(
            f"written by a newer recai (format {meta['format_version']})",
            path=meta_path,
            field="format_version",
        )
    return meta


class Estimator(ABC):
    """What every recommender and knowledge extractor is: hyperparameters in, fitted state out, a folder.

    A subclass declares its hyperparameters as keyword-only arguments of ``__init__`` (defaults written
    there), checks them, and passes its ``locals()`` up: ``super().__init__(locals())``.

    Args:
        arguments: the subclass ``__init__``'s local variables; each hyperparameter (a name in the
            signature) is stored as the attribute of that name, everything else is ignored.
    """

    #: what saved folders and messages call this kind of estimator
    family: ClassVar[str] = "estimator"
    #: the call that fits it, for the not-fitted message
    fit_call: ClassVar[str] = "fit"

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        for name in self.param_names():
            setattr(self, name, arguments[name])

    @classmethod
    def param_names(cls) -> list[str]:
        """The hyperparameters: the names ``__init__`` takes."""
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as passed to ``__init__`` (JSON-serialisable)."""
        return {name: getattr(self, name) for name in self.param_names()}

    @property
    @abstractmethod
    def fitted(self) -> bool:
        """True once ``fit`` (or ``load``) has given the estimator its state."""

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call {self.fit_call} first")

    # ------------------------------------------------------------- persist
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write ``meta.json`` and ``state.npz`` (and what :meth:`_save_extra` adds) atomically."""
        import numpy as np  # here, not at the top: ``recai --help`` lists MODELS without loading NumPy

        self._check_fitted()
        path = Path(path)
        with atomic_directory(path, overwrite=overwrite) as tmp:
            meta = {
                "class": type(self).__name__,
                "format_version": FORMAT_VERSION,
                "params": self.get_params(),
                **self._meta(),
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
            np.savez(tmp / STATE_FILE, **self._state())
            self._save_extra(tmp)
        return path

    @classmethod
    def _restore(cls: type[E], path: str | Path) -> E:
        """A new instance with the saved hyperparameters and state (the subclass's ``load`` finishes it)."""
        import numpy as np

        path = Path(path)
        meta = read_meta(path, f"a saved {cls.family}")
        if meta.get("class") != cls.__name__:
            raise DataError(
                f"holds a {meta.get('class')}, not a {cls.__name__}", path=path / META_FILE, field="class"
            )
        estimator = cls(**meta["params"])
        estimator._restore_meta(meta)
        with np.load(path / STATE_FILE, allow_pickle=False) as state:
            estimator._set_state({key: state[key] for key in state.files})
        estimator._load_extra(path)
        return estimator

    def _meta(self) -> dict[str, Any]:
        """What ``meta.json`` records besides class, format and hyperparameters."""
        return {}

    def _restore_meta(self, meta: dict[str, Any]) -> None:
        """Take back what :meth:`_meta` wrote, before the state is set."""
        return None

    def _save_extra(self, folder: Path) -> None:
        """Write anything that does not fit in ``state.npz`` (a nested model); nothing by default."""
        return None

    def _load_extra(self, folder: Path) -> None:
        """Read what ``_save_extra`` wrote; nothing by default."""
        return None

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None: ...


class Registry(Mapping[str, type[E]], Generic[E]):
    """Estimator classes under the names a CLI argument, an evaluation spec or a config uses.

    It is a read-only mapping (``name in registry``, ``registry[name]``, iteration in listing order), and
    the one place that builds a model from a name: :meth:`build` gives each class only the run options its
    ``__init__`` takes, so a caller can ask for a seed or a progress bar without knowing which models
    have one.

    Args:
        what: what a name names, for messages ("recommender", "knowledge kind").
        classes: name -> class, in the order listings show them; a class may be given by its dotted path
            (``"recai.rec.sasrec.SASRec"``) and is then imported when first asked for, so that listing
            the names (``recai rec train --help``) imports no model.
        run_options: the options a caller may set for every model alike (a seed, a progress bar, a time
            budget); hyperparameters of one model go to :meth:`build` as ``params``.
    """

    def __init__(
        self, what: str, classes: Mapping[str, type[E] | str], *, run_options: Sequence[str] = ()
    ) -> None:
        self.what = what
        self._classes = dict(classes)
        self.run_options = tuple(run_options)

    def __getitem__(self, name: str) -> type[E]:
        cls = self._classes[name]
        if isinstance(cls, str):
            module, _, attribute = cls.rpartition(".")
            cls = self._classes[name] = getattr(importlib.import_module(module), attribute)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def check(self, name: str) -> type[E]:
        """The class registered as ``name``, or a ValueError listing the names there are."""
        if name not in self._classes:
            raise ValueError(f"unknown {self.what} '{name}'; available: {', '.join(self._classes)}")
        return self[name]

    def build(self, name: str, params: Mapping[str, Any] | None = None, **run_options: Any) -> E:
        """An unfitted ``name`` with hyperparameters ``params`` (they win over run options of the same
        name); a bad hyperparameter is a ValueError naming the model."""
        unknown = sorted(set(run_options) - set(self.run_options))
        if unknown:
            raise TypeError(f"{unknown} are not run options of {self.what}s ({', '.join(self.run_options)})")
        cls = self.check(name)
        accepted = set(cls.param_names())
        options = {key: value for key, value in run_options.items() if key in accepted}
        try:
            return cls(**{**options, **dict(params or {})})
        except TypeError as exc:
            raise ValueError(f"bad hyperparameter for {self.what} '{name}': {exc}") from None

    def saved_class(self, path: str | Path) -> type[E]:
        """The registered class a saved folder holds (read from its ``meta.json``)."""
        meta = read_meta(path, f"a saved {self.what}")
        by_class = {cls.__name__: cls for cls in self.values()}
        if meta.get("class") not in by_class:
            raise DataError(
                f"holds no known {self.what} (class {meta.get('class')!r}; known: {', '.join(by_class)})",
                path=Path(path) / META_FILE,
                field="class",
            )
        return by_class[meta["class"]]
