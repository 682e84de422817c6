"""Knowledge partitions, beliefs, the meet and AGG."""

from __future__ import annotations

import numpy as np
import pytest

from crowdauction.errors import InvalidPartitionError
from crowdauction.mechanisms import Knowledge, Prior, agg, meet
from crowdauction.mechanisms.knowledge import coarse_signal, knows_everything, observes, own_value


@pytest.fixture
def prior() -> Prior:
    return Prior.gaussian_copula(3, [0, 1, 2], 0.5)


def test_own_value_belief_is_the_bayesian_posterior(prior):
    k = Knowledge(prior)
    # Bidder 1 with value 2: belief over (theta_0, theta_2) = D(., 2, .) normalised.
    want = prior.table[:, 2, :] / prior.table[:, 2, :].sum()
    np.testing.assert_allclose(k.belief(1, (0, 2, 0)), want)
    assert k.num_cells(1) == 3


def test_knowing_everything_gives_point_masses(prior):
    k = Knowledge(prior, [knows_everything(prior.space, i) for i in range(3)])
    b = k.belief(0, (1, 2, 0))
    assert b[2, 0] == pytest.approx(1.0)
    assert b.sum() == pytest.approx(1.0)


def test_observing_a_bidder_conditions_on_its_value(prior):
    k = Knowledge.from_spec(prior, [[1], "own", "own"])
    b = k.belief(0, (2, 1, 0))  # shape (3, 3) over (theta_1, theta_2)
    np.testing.assert_allclose(b[1], prior.table[2, 1, :] / prior.table[2, 1, :].sum())
    assert b[0].sum() == 0 and b[2].sum() == 0


def test_partition_hiding_own_value_is_rejected(prior):
    bad = np.zeros(prior.space.shape, dtype=int)  # one cell for everything
    with pytest.raises(InvalidPartitionError, match="hides its own value.*values \\[0, 1, 2\\]"):
        Knowledge(prior, [bad, own_value(prior.space, 1), own_value(prior.space, 2)])
    with pytest.raises(InvalidPartitionError, match="shape"):
        Knowledge(prior, [np.zeros(3), own_value(prior.space, 1), own_value(prior.space, 2)])
    with pytest.raises(InvalidPartitionError, match="unknown knowledge spec"):
        Knowledge.from_spec(prior, ["own", "most", "own"])


def test_coarse_signal_sits_between_own_and_observing(prior):
    space = prior.space
    sig = coarse_signal(space, 0, 1, 2)  # learns whether theta_1 is in {0, 1} or {2}
    k = Knowledge(prior, [sig, own_value(space, 1), own_value(space, 2)])
    assert k.num_cells(0) == 3 * 2
    coarse = Knowledge(prior)
    fine = Knowledge(prior, [observes(space, 0, [1]), own_value(space, 1), own_value(space, 2)])
    assert k.is_finer_than(coarse, 0) and fine.is_finer_than(k, 0)
    assert not coarse.is_finer_than(k, 0)


def test_meet_is_the_common_refinement(prior):
    space = prior.space
    a = observes(space, 0, [1])
    b = observes(space, 0, [2])
    m = meet(a, b)
    np.testing.assert_array_equal(
        np.unique(m).size, np.unique(knows_everything(space, 0)).size
    )


def test_zero_probability_cell_gets_a_uniform_belief():
    p = Prior(np.array([[0.5, 0.5], [0.0, 0.0]]), [[0, 1], [0, 1]])
    k = Knowledge(p)
    np.testing.assert_allclose(k.beliefs[0][1], [0.5, 0.5])
    assert k.cell_prob[0][1] == 0.0


def test_agg_conditions_on_the_intersection_or_falls_back():
    # Two reporters over a 1 x 3 grid of profiles (bidder 0 fixed, bidder 1 free).
    F1 = np.array([[0.5, 0.5, 0.0]])
    F2 = np.array([[0.0, 0.2, 0.8]])
    out = agg(2, np.stack([F1, F2], axis=1)[:, :, None, :], [0, 1])
    np.testing.assert_allclose(out[0, 0], [0.0, 1.0, 0.0])
    F3 = np.array([[0.0, 0.0, 1.0]])
    out = agg(2, np.stack([F1, F3], axis=1)[:, :, None, :], [0, 1])
    np.testing.assert_allclose(out[0, 0], F1[0])  # empty intersection: lowest reporter
