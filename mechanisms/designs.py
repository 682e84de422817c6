"""Named recipes that build a classical mechanism for a given distribution.

The crowdsourced mechanisms are compilers: they learn a distribution from the bidders
and then run a classical mechanism designed for it. A :class:`Design` is that recipe,
``design.build(prior) -> ClassicalMechanism``, with the strictifying lottery of the
paper's Lemma 1 applied when ``delta > 0``, and a bounded cache so that equal
distributions are designed once. ``design.build_many(priors)`` designs many
distributions at once; designs with a batched builder (see :data:`BATCHED`: the
LP-optimal auction solves all of them in one LP) are much faster that way.

Registered names (see :data:`CLASSICAL`): ``second_price``, ``first_price``,
``monopoly_reserve`` (second price with the marginals' monopoly reserves),
``myerson``, ``lookahead`` (Ronen), ``optimal`` (the LP-optimal DST auction).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from crowdauction.errors import InvalidParameterError, UnknownNameError
from crowdauction.mechanisms.checks import int_param, real_param
from crowdauction.mechanisms.classical import (
    ClassicalMechanism,
    FirstPrice,
    SecondPrice,
    Strictified,
)
from crowdauction.mechanisms.prior import Prior
from crowdauction.mechanisms.typespace import Setting, TypeSpace

__all__ = ["Design", "CLASSICAL", "BATCHED", "make_design", "classical_names"]

Builder = Callable[[Prior, Setting | None], ClassicalMechanism]
BatchBuilder = Callable[[Sequence[Prior], Setting | None], list[ClassicalMechanism]]


def _second_price(prior: Prior, setting: Setting | None) -> ClassicalMechanism:
    return SecondPrice(setting=setting)


def _first_price(prior: Prior, setting: Setting | None) -> ClassicalMechanism:
    return FirstPrice(setting=setting)


def _monopoly(prior: Prior, setting: Setting | None) -> ClassicalMechanism:
    from crowdauction.mechanisms.myerson import monopoly_reserves

    mech = SecondPrice(reserve=monopoly_reserves(prior), setting=setting)
    mech.name = "monopoly_reserve"
    return mech


def _myerson(prior: Prior, setting: Setting | None) -> ClassicalMechanism:
    from crowdauction.mechanisms.myerson import myerson

    return myerson(prior, setting)


def _lookahead(prior: Prior, setting: Setting | None) -> ClassicalMechanism:
    from crowdauction.mechanisms.lookahead import Lookahead

    if setting is not None and setting.capacity(prior.n) != 1:
        raise InvalidParameterError(
            "the 1-lookahead auction sells a single good; use another design for k units"
        )
    return Lookahead(prior)


def _optimal(prior: Prior, setting: Setting | None) -> ClassicalMechanism:
    from crowdauction.mechanisms.optimal import optimal_mechanism

    return optimal_mechanism(prior, setting)


def _optimal_many(priors: Sequence[Prior], setting: Setting | None) -> list[ClassicalMechanism]:
    from crowdauction.mechanisms.optimal import optimal_mechanisms

    return list(optimal_mechanisms(priors, setting))


#: name -> builder of one mechanism for one distribution
CLASSICAL: dict[str, Builder] = {
    "second_price": _second_price,
    "first_price": _first_price,
    "monopoly_reserve": _monopoly,
    "myerson": _myerson,
    "lookahead": _lookahead,
    "optimal": _optimal,
}

#: name -> builder of many mechanisms at once, for the designs that have one; the
#: others are built one distribution at a time.
BATCHED: dict[str, BatchBuilder] = {
    "optimal": _optimal_many,
}


def classical_names() -> list[str]:
    return sorted(CLASSICAL)


class Design:
    """A classical mechanism recipe, optionally strictified, with a cache.

    Args:
        name: a key of :data:`CLASSICAL`.
        delta: probability of the Lemma 1 lottery; 0 leaves the mechanism as is.
        eps_prime: the lottery's discount, in ``(0, 1)``.
        setting: feasibility; single good by default.
        cache_size: how many built mechanisms to keep, keyed by distribution.
    """

    def __init__(
        self,
        name: str,
        delta: float = 0.0,
        eps_prime: float = 0.5,
        setting: Setting | None = None,
        cache_size: int = 512,
    ):
        if not isinstance(name, str) or name not in CLASSICAL:
            raise UnknownNameError(
                f"unknown classical mechanism {name!r}; expected one of {classical_names()}"
            )
        self.name = name
        self.delta = real_param(
            delta, "delta (the design's lottery probability)", low=0.0, high=1.0,
            high_open=True, hint="0 leaves the design unstrictified",
        )
        self.eps_prime = real_param(
            eps_prime, "the lottery discount eps_prime", low=0.0, high=1.0, low_open=True,
            high_open=True,
        )
        if setting is not None and not isinstance(setting, Setting):
            raise InvalidParameterError(
                "setting must be a Setting such as KUnits(k) or DownwardClosed(...), "
                f"got {setting!r}"
            )
        self.setting = setting
        self._builder = CLASSICAL[name]
        self._cache: OrderedDict[bytes, ClassicalMechanism] = OrderedDict()
        self._cache_size = int_param(cache_size, "cache_size", low=0)
        self.hits = 0
        self.misses = 0

    def build(self, prior: Prior) -> ClassicalMechanism:
        """The mechanism for distribution ``prior`` (from the cache when seen before)."""
        return self.build_many([prior])[0]

    def build_many(self, priors: Sequence[Prior]) -> list[ClassicalMechanism]:
        """The mechanisms for many distributions, in order, as repeated :meth:`build`.

        Cached distributions are served from the cache; the others are built together
        when the design has a batched builder (:data:`BATCHED`), else one at a time.
        The hit and miss counters and the cache end as after a loop of :meth:`build`
        calls: a distribution repeated within ``priors`` is built once and counts as a
        hit after its first appearance, and equal distributions get the same object.

        Args:
            priors: the distributions; a batched builder builds those of each type
                space together.

        Returns:
            One mechanism per prior, strictified when ``delta > 0``.
        """
        out: list[ClassicalMechanism | None] = [None] * len(priors)
        todo: dict[bytes, list[int]] = {}  # key of each miss -> its positions in priors
        for pos, prior in enumerate(priors):
            key = prior.key()
            mech = self._cache.get(key)
            if mech is not None:
                self.hits += 1
                self._cache.move_to_end(key)
                out[pos] = mech
            elif key in todo:  # a loop of build() calls would find it cached by now
                self.hits += 1
                todo[key].append(pos)
            else:
                self.misses += 1
                todo[key] = [pos]
        if not todo:
            return out  # type: ignore[return-value]  # every position is filled
        first = [priors[positions[0]] for positions in todo.values()]
        built = self._build_misses(first)
        for (key, positions), prior, mech in zip(todo.items(), first, built):
            if self.delta > 0:
                mech = Strictified(mech, self.delta, eps_prime=self.eps_prime, space=prior.space)
            self._cache[key] = mech
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            for pos in positions:
                out[pos] = mech
        return out  # type: ignore[return-value]  # every position is filled

    def _build_misses(self, priors: list[Prior]) -> list[ClassicalMechanism]:
        """Unwrapped mechanisms for ``priors``, batched per type space when possible."""
        batched = BATCHED.get(self.name)
        if batched is None:
            return [self._builder(prior, self.setting) for prior in priors]
        by_space: dict[TypeSpace, list[int]] = {}
        for pos, prior in enumerate(priors):
            by_space.setdefault(prior.space, []).append(pos)
        built: list[ClassicalMechanism | None] = [None] * len(priors)
        for positions in by_space.values():
            mechs = batched([priors[pos] for pos in positions], self.setting)
            for pos, mech in zip(positions, mechs):
                built[pos] = mech
        return built  # type: ignore[return-value]  # every position is filled

    @property
    def truthful(self) -> bool:
        return self.name != "first_price"

    def __repr__(self) -> str:
        return f"Design({self.name!r}, delta={self.delta})"


def make_design(name: str | Design, delta: float = 0.0, **kwargs: object) -> Design:
    """Resolve a design by name, or pass a :class:`Design` through."""
    if isinstance(name, Design):
        return name
    return Design(name, delta=delta, **kwargs)  # type: ignore[arg-type]
