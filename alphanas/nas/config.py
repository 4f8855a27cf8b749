"""The configuration of a search: one frozen dataclass, read from TOML and/or CLI flags.

    [search]                 # every key optional
    dataset = "digits"       # digits | cifar10 | synthetic | fashion_mnist
    data_path = "..."        # cifar10: the directory of the python-pickle batches (required);
                             # fashion_mnist: of the IDX files (default /usr/share/datasets/fashion-mnist)
    data_limit = 0           # cap on training examples (0 = all)
    seed_model = "cifar_cnn" # a zoo name (built for the dataset's input) or a JSON graph
    trials = 20              # children evaluated (the seed copies included)
    seed_copies = 2          # the first trials train the seed model itself
    strategy = "pareto"      # pareto (the paper) | aging (regularized evolution)
    objective = "params"     # pareto: accuracy vs. params | flops
    population = 10          # aging: population size
    sample = 3               # aging: tournament size
    top_k = 10               # pareto: soft selection among the k closest to the front
    batch = 4                # trials whose parents come from the same history snapshot
    mutator = "synth"        # synth (property-guided) | random (baseline)
    inherit_weights = false  # children start from the parent's weights for unchanged ops
    seed = 0
    [train]                  # alphanas.nas.train.TrainConfig fields
    epochs = 1
    batch_size = 64
    learning_rate = 1e-3

`batch` (not the worker count) fixes which results a parent is chosen from, so the same seed
gives the same architectures with 1 or N workers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from alphanas.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "SearchConfig", "load_config"]

DATASETS = ("digits", "cifar10", "synthetic", "fashion_mnist")
STRATEGIES = ("pareto", "aging", "sample")
"""sample: every child is a mutation of the seed model (random sampling around the seed)."""
MUTATORS = ("synth", "random")
OBJECTIVES = ("params", "flops")
RESUMABLE = frozenset({"trials"})
"""Keys that may change when a run is resumed (more trials)."""


class ConfigError(SpecError):
    """A malformed search configuration (names the file, key and accepted values)."""


@dataclass(frozen=True)
class SearchConfig:
    dataset: str = "digits"
    data_path: str | None = None
    data_limit: int = 0
    seed_model: str = "cifar_cnn"
    trials: int = 20
    seed_copies: int = 2
    strategy: str = "pareto"
    objective: str = "params"
    population: int = 10
    sample: int = 3
    top_k: int = 10
    batch: int = 4
    mutator: str = "synth"
    inherit_weights: bool = False
    seed: int = 0
    synth_timeout_s: float = 30.0   # a safety net per synthesis; the deterministic budget is its
    # candidate count (MutationSettings.synth_max_candidates)
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, ok in (("dataset", DATASETS), ("strategy", STRATEGIES), ("mutator", MUTATORS),
                        ("objective", OBJECTIVES)):
            if getattr(self, key) not in ok:
                raise ConfigError(f"search.{key}: expected one of {', '.join(ok)}, got {getattr(self, key)!r}")
        for key, lo in (("trials", 1), ("seed_copies", 1), ("population", 2), ("sample", 1),
                        ("top_k", 1), ("batch", 1), ("data_limit", 0)):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ConfigError(f"search.{key}: expected an integer >= {lo}, got {v!r}")
        if self.sample > self.population:
            raise ConfigError(f"search.sample: {self.sample} exceeds search.population {self.population}")
        if self.dataset == "cifar10" and not self.data_path:
            raise ConfigError("search.data_path: the cifar10 dataset needs the directory of its batches")
        object.__setattr__(self, "train", dict(self.train))
        self.train_config()  # validates [train]

    def train_config(self) -> Any:
        from alphanas.nas.train import TrainConfig

        known = {f.name for f in fields(TrainConfig)}
        bad = sorted(set(self.train) - known)
        if bad:
            raise ConfigError(f"train.{bad[0]}: unknown key (accepted: {', '.join(sorted(known))})")
        defaults = {"augment": False} if self.dataset == "digits" else {}  # 8x8: shifts hurt
        try:
            return TrainConfig(**{**defaults, **self.train, "seed": self.seed})
        except (TypeError, ValueError) as e:
            raise ConfigError(f"train: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train"] = dict(self.train)
        return d

    def differs(self, stored: Mapping[str, Any]) -> str | None:
        """The first key (other than RESUMABLE ones) whose value differs from a stored config."""
        mine = self.to_dict()
        for k in sorted(set(mine) | set(stored)):
            if k not in RESUMABLE and mine.get(k) != stored.get(k):
                return f"{k}: the run has {stored.get(k)!r}, this command {mine.get(k)!r}"
        return None

    def with_overrides(self, **kw: Any) -> SearchConfig:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def load_config(path: str | Path | None, **overrides: Any) -> SearchConfig:
    """The config of a TOML file (or the defaults), with CLI overrides applied."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text())
        except OSError as e:
            raise ConfigError(f"{p}: cannot read the config: {e.strerror or e}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: malformed TOML: {e}") from None
        unknown = sorted(set(doc) - {"search", "train"})
        if unknown:
            raise ConfigError(f"{p}: unknown section [{unknown[0]}] (accepted: search, train)")
        data = dict(doc.get("search", {}))
        known = {f.name for f in fields(SearchConfig)} - {"train"}
        bad = sorted(set(data) - known)
        if bad:
            raise ConfigError(f"{p}: search.{bad[0]}: unknown key (accepted: {', '.join(sorted(known))})")
        data["train"] = doc.get("train", {})
    try:
        cfg = SearchConfig(**data)
        return cfg.with_overrides(**overrides)
    except ConfigError as e:
        raise ConfigError(f"{path or '<flags>'}: {e}") from None
    except TypeError as e:
        raise ConfigError(f"{path or '<flags>'}: {e}") from None
