"""Typed training configuration, loaded from TOML and validated before training.

A configuration has one table per concern, each a dataclass whose fields are typed
and documented once (below, in the ``Attributes`` of each class):

.. code-block:: toml

    [setting]       # SettingConfig: bidders, value grid, prior, knowledge
    n = 3
    values = [0, 1, 2, 3]
    prior = "gaussian_copula"
    prior_params = { rho = 0.5 }
    knowledge = ["own", [0], "own"]

    [mechanism]     # MechanismConfig
    name = "M"
    design = "second_price"

    [algo]          # AlgoConfig: PPO hyperparameters under stable-baselines3's names
    n_envs = 16

    [run]           # RunConfig: mode, budget, seed, checkpoints, output
    mode = "best_response"
    total_steps = 20000

    [best_response] # BestResponseConfig: who learns, what the others play
    learner = 0
    opponents = "truthful"

    [independent]   # IndependentConfig: alternation of per-bidder learners
    round_steps = 2048

:func:`load_config` reads a file, :func:`config_from_dict` a mapping; both reject
unknown keys (naming the key and listing the valid ones) and bad values, and build
the prior and the mechanism so that a broken prior file or an impossible mechanism
fails here, before any training starts. What they build is kept on the configuration
(see :func:`build_prior`), so that training reuses it instead of building (and warning
about) the prior again. :func:`config_to_dict` gives the resolved configuration
(defaults filled in, the mechanism's default ``eps``, ``design`` and ``scoring`` made
explicit where the mechanism uses them, ``null`` where it does not) that a run saves
as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from crowdauction.errors import CrowdAuctionError, InvalidConfigError
from crowdauction.mechanisms.crowdsourced import CrowdsourcedLookahead, RandomInformant
from crowdauction.mechanisms.designs import CLASSICAL, Design
from crowdauction.mechanisms.exact import Mechanism
from crowdauction.mechanisms.knowledge import Knowledge
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.scoring import SCORING_RULES
from crowdauction.mechanisms.typespace import TypeSpace
from crowdauction.training.priors import BINNING, read_samples_prior, read_table_prior

__all__ = [
    "SettingConfig",
    "MechanismConfig",
    "AlgoConfig",
    "RunConfig",
    "BestResponseConfig",
    "IndependentConfig",
    "TrainConfig",
    "MODES",
    "MECHANISMS",
    "PRIOR_FAMILIES",
    "OPPONENTS",
    "SEED_LIMIT",
    "RUN_NAME_MAX_BYTES",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "save_config",
    "validate",
    "build_prior",
    "build_knowledge",
    "build_mechanism",
]

#: Training modes (see :mod:`crowdauction.training.run`).
MODES = ("best_response", "self_play", "independent")
#: Mechanism names: the crowdsourced M and L, and the classical designs.
MECHANISMS = ("M", "L", *sorted(CLASSICAL))
#: Prior families and the parameters each accepts (name -> (required, optional)).
PRIOR_FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uniform": ((), ()),
    "iid": (("marginal",), ()),
    "independent": (("marginals",), ()),
    "gaussian_copula": ((), ("rho", "marginal")),
    "common_component": (("common", "noise"), ()),
    "table": ((), ()),
    "samples": ((), ()),
}
#: Fixed opponent kinds in best-response mode.
OPPONENTS = ("truthful", "random", "shading")
#: Seeds are in ``[0, SEED_LIMIT)``: stable-baselines3 seeds numpy's legacy generator,
#: which takes 32 bits.
SEED_LIMIT = 2**32
#: Longest ``run.name`` in UTF-8 bytes; leaves room for a ``-k`` suffix under the usual
#: 255-byte file-name limit.
RUN_NAME_MAX_BYTES = 200


@dataclass
class SettingConfig:
    """Bidders, value grid, prior and knowledge.

    Attributes:
        n: number of bidders (>= 2).
        values: the value grid, the same for every bidder (strictly increasing
            non-negative integers).
        prior: prior family: ``uniform``; ``iid`` (``marginal``); ``independent``
            (``marginals``, one per bidder); ``gaussian_copula`` (``rho`` in [0, 1),
            default 0.5; optional ``marginal``); ``common_component`` (``common``,
            ``noise``; the grid must then be ``0..len(common)+len(noise)-2``);
            ``table`` (an explicit CSV table in ``prior_file``); ``samples`` (a CSV
            of observed value profiles in ``prior_file``, binned onto the grid).
        prior_params: the family's parameters (see ``prior``).
        prior_file: CSV file for ``table`` and ``samples`` (relative paths are read
            from the config file's folder); see :mod:`crowdauction.training.priors`.
        binning: how ``samples`` values go onto the grid: ``nearest``, ``floor`` or
            ``ceil``.
        knowledge: per bidder ``"own"``, ``"all"`` or a list of observed bidders; a
            single string applies to every bidder.
    """

    n: int = 3
    values: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    prior: str = "gaussian_copula"
    prior_params: dict[str, Any] = field(default_factory=dict)
    prior_file: str = ""
    binning: str = "nearest"
    knowledge: str | list[str | list[int]] = "own"


@dataclass
class MechanismConfig:
    """The mechanism the bidders play.

    Attributes:
        name: ``M`` (random informant), ``L`` (crowdsourced 1-lookahead) or a classical
            design (``second_price``, ``first_price``, ``monopoly_reserve``,
            ``myerson``, ``lookahead``, ``optimal``), the latter built for the prior.
        eps: belief-reward scale (> 0); unset means the mechanism's default (M 0.05,
            L 0.001). Only M and L use it.
        delta: probability of the Lemma 1 lottery, in [0, 1) (L needs it > 0).
        design: M's inner classical design (a classical name); unset means
            ``optimal``. Only M uses it.
        scoring: scoring rule paying belief reports: ``brier`` (when unset),
            ``log``, ``spherical`` or ``linear`` (improper; a control). Only M and L
            use it.

    A key the mechanism does not use draws a warning naming it, and validation resets
    it to unset, so that the resolved configuration shows only what the run uses.
    """

    name: str = "M"
    eps: float | None = None
    delta: float = 0.05
    design: str | None = None
    scoring: str | None = None


@dataclass
class AlgoConfig:
    """PPO hyperparameters, under stable-baselines3's names, and the batch size.

    Attributes:
        n_envs: auctions run in parallel per environment step. Self-play has
            ``n_envs * n`` policy rows (one per bidder and auction).
        learning_rate: Adam step size.
        n_steps: environment steps per rollout and row (an auction lasts one or two
            steps: valuation phase, belief phase).
        batch_size: minibatch size of the PPO update.
        n_epochs: passes over each rollout.
        gamma: discount; 1.0 since an auction's only reward comes at its end.
        gae_lambda: GAE parameter.
        clip_range: PPO clipping.
        ent_coef: entropy bonus.
        vf_coef: value-loss weight.
        max_grad_norm: gradient clipping.
        net_arch: hidden layer sizes of the policy and value networks.
        log_std_init: initial log standard deviation of the Gaussian policy.
        device: torch device.
        reward: ``"realised"`` utilities as rewards, or ``"expected"``: their exact
            expectation over the mechanism's own coins (lottery, randomised
            allocation), which leaves incentives unchanged and cuts reward noise.
    """

    n_envs: int = 16
    learning_rate: float = 3e-4
    n_steps: int = 32
    batch_size: int = 128
    n_epochs: int = 4
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    log_std_init: float = 0.0
    device: str = "cpu"
    reward: str = "realised"


@dataclass
class RunConfig:
    """What to run and where to write it.

    Attributes:
        mode: ``best_response``, ``self_play`` or ``independent``.
        total_steps: training budget in stable-baselines3 timesteps (policy rows
            times environment steps, summed over learners in ``independent`` mode);
            training stops at the first rollout boundary at or past it.
        seed: seeds torch, numpy, the environments and the policies; in
            ``[0, 2**32)``.
        checkpoint_every: timesteps between checkpoints (0: only the final model);
            checkpoints are taken at rollout boundaries.
        eval_every: timesteps between exact evaluations of the current policy (0:
            only at the end); written as ``eval/...`` metrics.
        out: parent folder of run directories (created if missing; must not be a
            file).
        name: run directory name (no path separators or NUL, at most 200 UTF-8
            bytes); empty means ``<mode>-<mechanism>-seed<seed>``.
    """

    mode: str = "best_response"
    total_steps: int = 20_000
    seed: int = 0
    checkpoint_every: int = 0
    eval_every: int = 0
    out: str = "runs"
    name: str = ""


@dataclass
class BestResponseConfig:
    """Best-response mode: one bidder learns, the others play fixed agents.

    Attributes:
        learner: the learning bidder.
        opponents: what the others play: ``truthful``, ``random`` or ``shading``, or
            one such name per bidder (the learner's entry is ignored).
        shading_fraction: the fraction of value a ``shading`` opponent reports
            (rounded down to its grid), in [0, 1].
    """

    learner: int = 0
    opponents: str | list[str] = "truthful"
    shading_fraction: float = 0.5


@dataclass
class IndependentConfig:
    """Independent learners: one PPO policy per bidder, trained in alternation.

    Attributes:
        round_steps: timesteps each bidder trains for per round (rounded up to its
            rollout size) against the others' current policies, which act
            deterministically.
    """

    round_steps: int = 2048


@dataclass
class TrainConfig:
    """A complete training configuration (one attribute per TOML table)."""

    setting: SettingConfig = field(default_factory=SettingConfig)
    mechanism: MechanismConfig = field(default_factory=MechanismConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    run: RunConfig = field(default_factory=RunConfig)
    best_response: BestResponseConfig = field(default_factory=BestResponseConfig)
    independent: IndependentConfig = field(default_factory=IndependentConfig)
    #: Folder relative prior files are read from (not a TOML key; set by load_config).
    base_dir: str = field(default="", repr=False)
    #: What build_prior/build_knowledge/build_mechanism built: name -> (key, object).
    _built: dict[str, tuple[str, Any]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def run_name(self) -> str:
        return self.run.name or f"{self.run.mode}-{self.mechanism.name}-seed{self.run.seed}"


_SECTIONS = {
    f.name: f for f in dataclasses.fields(TrainConfig) if f.name not in ("base_dir", "_built")
}


# -- type checking of TOML values ---------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return "none" if tp is type(None) else tp.__name__


def _conforms(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` has type ``tp``; returns ``(ok, converted value)``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            ok, v = _conforms(value, a)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return False, value
        (inner,) = typing.get_args(tp)
        out = []
        for x in value:
            ok, v = _conforms(x, inner)
            if not ok:
                return False, value
            out.append(v)
        return True, out
    if origin is dict:
        return isinstance(value, dict), dict(value) if isinstance(value, dict) else value
    return isinstance(value, tp), value


def _section(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidConfigError(f"[{section}] must be a table of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise InvalidConfigError(
                f"unknown key {section}.{key}; valid keys of [{section}] are {', '.join(names)}"
            )
        ok, v = _conforms(value, hints[key])
        if not ok:
            raise InvalidConfigError(
                f"{section}.{key} = {value!r} has the wrong type; expected {_type_name(hints[key])}"
            )
        kwargs[key] = v
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], base_dir: str | Path = "") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested mapping.

    Args:
        data: ``{"setting": {...}, "mechanism": {...}, ...}``; missing tables and
            keys take their defaults.
        base_dir: folder that relative ``prior_file`` paths are read from.

    Raises:
        InvalidConfigError: for an unknown table or key (named, with the valid
            ones), a value of the wrong type, or a bad value; the message names the
            key.
    """
    if not isinstance(data, dict):
        raise InvalidConfigError(f"a configuration must be a table, got {type(data).__name__}")
    parts: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _SECTIONS:
            raise InvalidConfigError(
                f"unknown table [{key}]; valid tables are {', '.join(_SECTIONS)}"
            )
        cls = typing.get_type_hints(TrainConfig)[key]
        parts[key] = _section(cls, value, key)
    cfg = TrainConfig(**parts, base_dir=str(base_dir))
    validate(cfg)
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read a configuration from a TOML (or a saved JSON) file and validate it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InvalidConfigError(f"cannot read config file {str(path)!r}: {e.strerror or e}") from e
    try:
        if path.suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
            data.pop("base_dir", None)
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidConfigError(f"config file {str(path)!r} does not parse: {e}") from e
    return config_from_dict(data, base_dir=path.resolve().parent)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The resolved configuration as plain data (JSON-ready), without ``base_dir``."""
    out = {name: dataclasses.asdict(getattr(cfg, name)) for name in _SECTIONS}
    return out


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved configuration as JSON, atomically."""
    from crowdauction.training.io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(config_to_dict(cfg), indent=2, sort_keys=False) + "\n")


# -- value validation ---------------------------------------------------------------


def _bad(key: str, value: Any, expected: str) -> InvalidConfigError:
    return InvalidConfigError(f"{key} = {value!r} is invalid; expected {expected}")


def _positive_int(key: str, value: int, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise _bad(key, value, "a non-negative integer" if allow_zero else "a positive integer")


def validate(cfg: TrainConfig) -> None:
    """Check every value and build the prior, knowledge and mechanism, before training.

    Fills in the mechanism's defaults (``eps``, and ``design``/``scoring`` where it
    uses them); a ``[mechanism]`` key it ignores draws a ``UserWarning`` and is unset.
    What it builds stays on ``cfg`` (see :func:`build_prior`), so validating again or
    training afterwards builds nothing twice.

    Raises:
        InvalidConfigError: naming the first bad key.
    """
    s, m, a, r = cfg.setting, cfg.mechanism, cfg.algo, cfg.run
    if s.n < 2:
        raise _bad("setting.n", s.n, "at least 2 bidders")
    if (
        len(s.values) == 0
        or any(v < 0 for v in s.values)
        or any(b <= a_ for a_, b in zip(s.values, s.values[1:], strict=False))
    ):
        raise _bad(
            "setting.values", s.values, "a strictly increasing list of non-negative integers"
        )
    if s.prior not in PRIOR_FAMILIES:
        raise _bad("setting.prior", s.prior, f"one of {', '.join(PRIOR_FAMILIES)}")
    required, optional = PRIOR_FAMILIES[s.prior]
    for key in s.prior_params:
        if key not in required + optional:
            valid = ", ".join(required + optional) or "none"
            raise InvalidConfigError(
                f"unknown key setting.prior_params.{key} for prior {s.prior!r}; "
                f"valid keys are {valid}"
            )
    for key in required:
        if key not in s.prior_params:
            raise InvalidConfigError(f"prior {s.prior!r} needs setting.prior_params.{key}")
    if s.prior in ("table", "samples") and not s.prior_file:
        raise InvalidConfigError(f"prior {s.prior!r} needs setting.prior_file (a CSV file)")
    if s.prior not in ("table", "samples") and s.prior_file:
        raise InvalidConfigError(
            f"setting.prior_file is set but setting.prior = {s.prior!r}; "
            "use prior = 'table' or 'samples'"
        )
    if s.binning not in BINNING:
        raise _bad("setting.binning", s.binning, f"one of {', '.join(BINNING)}")
    if m.name not in MECHANISMS:
        raise _bad("mechanism.name", m.name, f"one of {', '.join(MECHANISMS)}")
    if m.eps is not None and not (math.isfinite(m.eps) and m.eps > 0):
        raise _bad("mechanism.eps", m.eps, "a positive finite number")
    if not (0.0 <= m.delta < 1.0):
        raise _bad("mechanism.delta", m.delta, "a number in [0, 1)")
    if m.name == "L" and m.delta == 0.0:
        raise _bad("mechanism.delta", m.delta, "a number in (0, 1) for L, whose lottery needs it")
    if m.design is not None and m.design not in CLASSICAL:
        raise _bad("mechanism.design", m.design, f"one of {', '.join(sorted(CLASSICAL))}")
    if m.scoring is not None and m.scoring not in SCORING_RULES:
        raise _bad("mechanism.scoring", m.scoring, f"one of {', '.join(sorted(SCORING_RULES))}")
    _drop_ignored(m)
    for key in ("n_envs", "n_steps", "batch_size", "n_epochs"):
        _positive_int(f"algo.{key}", getattr(a, key))
    if a.batch_size < 2:
        # PPO normalises advantages within a minibatch, which needs two samples.
        raise _bad("algo.batch_size", a.batch_size, "at least 2 (PPO normalises per minibatch)")
    for key in ("learning_rate", "clip_range", "max_grad_norm"):
        v = getattr(a, key)
        if not (math.isfinite(v) and v > 0):
            raise _bad(f"algo.{key}", v, "a positive finite number")
    if not (0.0 < a.gamma <= 1.0):
        raise _bad("algo.gamma", a.gamma, "a number in (0, 1]")
    if not (0.0 <= a.gae_lambda <= 1.0):
        raise _bad("algo.gae_lambda", a.gae_lambda, "a number in [0, 1]")
    for key in ("ent_coef", "vf_coef"):
        v = getattr(a, key)
        if not (math.isfinite(v) and v >= 0):
            raise _bad(f"algo.{key}", v, "a non-negative finite number")
    if not a.net_arch or any(h < 1 for h in a.net_arch):
        raise _bad("algo.net_arch", a.net_arch, "a non-empty list of positive layer sizes")
    if not math.isfinite(a.log_std_init):
        raise _bad("algo.log_std_init", a.log_std_init, "a finite number")
    if a.device not in ("cpu", "cuda", "auto"):
        raise _bad("algo.device", a.device, "cpu, cuda or auto")
    if a.reward not in ("realised", "expected"):
        raise _bad("algo.reward", a.reward, "realised or expected")
    if r.mode not in MODES:
        raise _bad("run.mode", r.mode, f"one of {', '.join(MODES)}")
    _positive_int("run.total_steps", r.total_steps)
    _positive_int("run.checkpoint_every", r.checkpoint_every, allow_zero=True)
    _positive_int("run.eval_every", r.eval_every, allow_zero=True)
    if not 0 <= r.seed < SEED_LIMIT:
        raise _bad("run.seed", r.seed, "an integer in [0, 2**32) (numpy seeds take 32 bits)")
    rows = a.n_envs * (s.n if r.mode == "self_play" else 1)
    if a.n_steps * rows < 2:
        raise InvalidConfigError(
            f"algo.n_steps * policy rows = {a.n_steps} * {rows} is a rollout of one sample; "
            "PPO normalises advantages over it and needs at least 2: raise algo.n_steps "
            "or algo.n_envs"
        )
    _check_run_name(r.name)
    _check_out(r.out)
    br = cfg.best_response
    if not 0 <= br.learner < s.n:
        raise _bad("best_response.learner", br.learner, f"a bidder in 0..{s.n - 1}")
    opp = [br.opponents] * s.n if isinstance(br.opponents, str) else list(br.opponents)
    if len(opp) != s.n:
        raise _bad("best_response.opponents", br.opponents, f"one name or a list of {s.n} names")
    for o in opp:
        if o not in OPPONENTS:
            raise _bad("best_response.opponents", o, f"one of {', '.join(OPPONENTS)}")
    if not (0.0 <= br.shading_fraction <= 1.0):
        raise _bad("best_response.shading_fraction", br.shading_fraction, "a number in [0, 1]")
    _positive_int("independent.round_steps", cfg.independent.round_steps)
    # Build what training will build, so that it fails here and not mid-run; the
    # results stay on cfg, so training does not build (and warn) again.
    prior = build_prior(cfg)
    if s.prior_file:
        # The resolved config names the file absolutely, so a run can resume elsewhere.
        s.prior_file = str(_prior_path(cfg).resolve())
    build_knowledge(cfg, prior)
    mech = build_mechanism(cfg, prior)
    if isinstance(mech, RandomInformant | CrowdsourcedLookahead):
        # Make the mechanism's defaults explicit, and remember the mechanism under them.
        m.eps = float(mech.eps)
        m.scoring = mech.scoring.name
        if isinstance(mech, RandomInformant):
            m.design = mech.design.name
        cfg._built["mechanism"] = (_mechanism_key(cfg, prior), mech)


#: The [mechanism] keys each mechanism ignores (classical: every other name).
_IGNORED_KEYS: dict[str, tuple[str, ...]] = {"M": (), "L": ("design",)}
_CLASSICAL_IGNORES = ("eps", "scoring", "design")


def _drop_ignored(m: MechanismConfig) -> None:
    """Warn about set [mechanism] keys that ``m.name`` does not use, and unset them."""
    keys = _IGNORED_KEYS.get(m.name, _CLASSICAL_IGNORES)
    given = [k for k in keys if getattr(m, k) is not None]
    if not given:
        return
    names = ", ".join(f"mechanism.{k}" for k in given)
    it = "it" if len(given) == 1 else "them"
    warnings.warn(
        f"{names} ignored: mechanism {m.name!r} does not use {it}; drop {it} from the config",
        UserWarning,
        stacklevel=3,
    )
    for k in given:
        setattr(m, k, None)


def _check_run_name(name: str) -> None:
    expected = (
        f"a plain folder name: no path separators or NUL, at most {RUN_NAME_MAX_BYTES} "
        "bytes in UTF-8"
    )
    if any(ch in name for ch in "/\\\0") or name in (".", ".."):
        raise _bad("run.name", name, expected)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise _bad("run.name", name, expected) from e
    if size > RUN_NAME_MAX_BYTES:
        raise InvalidConfigError(
            f"run.name is {size} bytes long ({name[:40]!r}...); expected {expected}"
        )


def _check_out(out: str) -> None:
    """``run.out`` must be a folder or creatable as one: no file on its way."""
    if "\0" in out:
        raise _bad("run.out", out, "a folder path without NUL characters")
    path = Path(out)
    for q in (path, *path.parents):
        try:
            if not q.exists():
                continue
        except OSError as e:
            raise InvalidConfigError(f"run.out = {out!r} cannot be inspected: {e}") from e
        if not q.is_dir():
            where = "is a file" if q == path else f"lies under {str(q)!r}, which is a file"
            raise InvalidConfigError(
                f"run.out = {out!r} {where}, not a folder; point run.out (or --out) at a "
                "folder for the run directories"
            )
        return


def _prior_path(cfg: TrainConfig) -> Path:
    path = Path(cfg.setting.prior_file)
    if not path.is_absolute() and cfg.base_dir:
        path = Path(cfg.base_dir) / path
    return path


def _cached(cfg: TrainConfig, what: str, key: str, build: Callable[[], Any]) -> Any:
    """``cfg``'s built ``what`` if it was built under ``key``, else ``build()``, kept."""
    hit = cfg._built.get(what)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = build()
    cfg._built[what] = (key, value)
    return value


def _prior_key(cfg: TrainConfig) -> str:
    """What the prior depends on, the prior file's size and mtime included."""
    s = cfg.setting
    parts: dict[str, Any] = {
        "n": s.n,
        "values": s.values,
        "prior": s.prior,
        "params": s.prior_params,
        "binning": s.binning,
    }
    if s.prior in ("table", "samples"):
        path = _prior_path(cfg)
        try:
            st = path.stat()
            parts["file"] = [str(path.resolve()), st.st_size, st.st_mtime_ns]
        except (OSError, ValueError):
            parts["file"] = [str(path), None, None]  # unreadable: the build will say why
    return json.dumps(parts, sort_keys=True, default=repr)


def _digest(prior: Prior) -> str:
    return hashlib.sha256(prior.key()).hexdigest()


def _mechanism_key(cfg: TrainConfig, prior: Prior) -> str:
    return json.dumps(dataclasses.asdict(cfg.mechanism), sort_keys=True) + "|" + _digest(prior)


def build_prior(cfg: TrainConfig) -> Prior:
    """The prior the setting describes, built once per configuration.

    The prior is kept on ``cfg``: later calls return the same object while
    ``[setting]`` and the prior file (its size and modification time) are unchanged,
    so a file's warnings (such as normalising) appear once, at validation.

    Raises:
        InvalidConfigError: naming ``setting.prior``/``prior_params``/``prior_file``.
    """
    return _cached(cfg, "prior", _prior_key(cfg), lambda: _build_prior(cfg))


def _build_prior(cfg: TrainConfig) -> Prior:
    s = cfg.setting
    p = s.prior_params
    space = TypeSpace.uniform(s.n, s.values)
    try:
        if s.prior == "uniform":
            return Prior.uniform(s.values, s.n)
        if s.prior == "iid":
            return Prior.iid(np.asarray(p["marginal"], dtype=np.float64), s.values, s.n)
        if s.prior == "independent":
            return Prior.independent(
                [np.asarray(x, dtype=np.float64) for x in p["marginals"]], [s.values] * s.n
            )
        if s.prior == "gaussian_copula":
            marg = p.get("marginal")
            return Prior.gaussian_copula(
                s.n,
                s.values,
                float(p.get("rho", 0.5)),
                None if marg is None else np.asarray(marg, dtype=np.float64),
            )
        if s.prior == "common_component":
            prior = Prior.common_component(s.n, p["common"], p["noise"])
            if prior.space != space:
                raise InvalidConfigError(
                    f"setting.values = {s.values} does not match the common-component grid "
                    f"{prior.grids[0].tolist()} (0..len(common)+len(noise)-2)"
                )
            return prior
        path = _prior_path(cfg)
        if s.prior == "table":
            return read_table_prior(path, space)
        return read_samples_prior(path, space, s.binning)
    except InvalidConfigError:
        raise
    except (CrowdAuctionError, ValueError, TypeError) as e:
        key = "setting.prior_file" if s.prior in ("table", "samples") else "setting.prior_params"
        raise InvalidConfigError(f"{key}: cannot build the {s.prior!r} prior: {e}") from e


def build_knowledge(cfg: TrainConfig, prior: Prior) -> Knowledge:
    """The knowledge partitions of ``setting.knowledge`` (kept on ``cfg`` like the prior)."""

    def build() -> Knowledge:
        try:
            return Knowledge.from_spec(prior, cfg.setting.knowledge)
        except (CrowdAuctionError, ValueError) as e:
            raise InvalidConfigError(
                f"setting.knowledge = {cfg.setting.knowledge!r}: {e}"
            ) from e

    key = json.dumps(cfg.setting.knowledge) + "|" + _digest(prior)
    return _cached(cfg, "knowledge", key, build)


def build_mechanism(cfg: TrainConfig, prior: Prior) -> Mechanism:
    """The mechanism of ``[mechanism]`` for the prior's type space.

    Classical names are built for the prior with :class:`Design` (the Lemma 1 lottery
    mixed in when ``delta > 0``); M's design is built for each informant report. Unset
    ``eps``, ``design`` and ``scoring`` take the mechanism's defaults. The mechanism is
    kept on ``cfg`` like the prior (an optimal design is a linear program).
    """
    return _cached(cfg, "mechanism", _mechanism_key(cfg, prior), lambda: _build(cfg, prior))


def _build(cfg: TrainConfig, prior: Prior) -> Mechanism:
    m = cfg.mechanism
    space = prior.space
    given = {"eps": m.eps, "scoring": m.scoring}
    kw = {k: v for k, v in given.items() if v is not None}
    try:
        if m.name == "M":
            if m.design is not None:
                kw["design"] = m.design
            return RandomInformant(space, delta=m.delta, **kw)
        if m.name == "L":
            return CrowdsourcedLookahead(space, delta=m.delta, **kw)
        return Design(m.name, delta=m.delta).build(prior)
    except (CrowdAuctionError, ValueError) as e:
        raise InvalidConfigError(f"[mechanism] {m.name!r} cannot be built: {e}") from e
