"""Elo fitting: a ladder of known strengths comes out in order and near the truth."""

import itertools
import math

import numpy as np
import pytest

from cartridge_jax.evaluation import elo, ladder

TRUE_ELO = {"random": 0.0, "greedy": 250.0, "alphabeta:2": 600.0, "model": 750.0,
            "alphabeta:5": 1100.0}


def expected_score(a: float, b: float) -> float:
    return 1.0 / (1.0 + 10 ** ((b - a) / 400.0))


def synthetic_results(games: int, draw_share: float, seed: int = 0):
    """W/D/L of every pair drawn from the Elo model: each game a draw with probability
    draw_share, otherwise a win with the probability that keeps the expected score."""
    rng = np.random.default_rng(seed)
    results = {}
    for a, b in itertools.combinations(TRUE_ELO, 2):
        p = expected_score(TRUE_ELO[a], TRUE_ELO[b])
        draws = min(draw_share, 2 * min(p, 1 - p))  # a feasible share for lopsided pairs
        win = (p - draws / 2) / (1 - draws)
        outcome = rng.choice(3, size=games, p=[(1 - draws) * win, draws, (1 - draws) * (1 - win)])
        results[a, b] = tuple(int(np.sum(outcome == k)) for k in range(3))
    return results


def test_exact_expected_scores_give_back_the_true_ratings():
    # Fractional "counts" at exactly the expected scores: the maximum likelihood is the truth.
    results = {}
    for a, b in itertools.combinations(TRUE_ELO, 2):
        p = expected_score(TRUE_ELO[a], TRUE_ELO[b])
        results[a, b] = (1000 * p, 0, 1000 * (1 - p))
    ratings = elo.fit(results, prior_draws=0)
    for name, truth in TRUE_ELO.items():
        assert ratings[name].elo == pytest.approx(truth, abs=0.01)
    assert ratings["random"].elo == 0 and ratings["random"].elo_se == 0


@pytest.mark.parametrize("draw_share", [0.0, 0.3])
def test_sampled_ladder_comes_out_in_order_near_the_truth(draw_share):
    ratings = elo.fit(synthetic_results(400, draw_share))
    fitted = [ratings[name].elo for name in TRUE_ELO]
    assert fitted == sorted(fitted), fitted
    for name, truth in TRUE_ELO.items():
        rating = ratings[name]
        assert abs(rating.elo - truth) <= max(4 * rating.elo_se, 1e-9), (name, rating)
        assert rating.elo_se < 60 and rating.games == 4 * 400


def test_standard_errors_shrink_with_more_games():
    few = elo.fit(synthetic_results(100, 0.1, seed=1))
    many = elo.fit(synthetic_results(1600, 0.1, seed=1))
    for name in TRUE_ELO:
        if name != "random":
            assert many[name].elo_se == pytest.approx(few[name].elo_se / 4, rel=0.35)


def test_scores_and_games():
    ratings = elo.fit({("a", "random"): (3, 2, 1), ("b", "a"): (0, 0, 4)})
    assert ratings["a"].games == 10 and ratings["a"].score == pytest.approx((3 + 1 + 4) / 10)
    assert ratings["random"].score == pytest.approx(2 / 6)
    assert ratings["a"].elo > ratings["random"].elo > ratings["b"].elo


def test_a_perfect_score_stays_finite_with_the_prior():
    ratings = elo.fit({("strong", "random"): (50, 0, 0)})
    # One virtual draw: 50.5 points of 51, so 400 log10(50.5 / 0.5) Elo.
    assert ratings["strong"].elo == pytest.approx(400 * math.log10(101), rel=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="the anchor 'random' played no games"):
        elo.fit({("a", "b"): (1, 0, 1)})
    with pytest.raises(ValueError, match="c, d never met 'random'"):
        elo.fit({("a", "random"): (1, 0, 1), ("c", "d"): (1, 0, 1)})


def test_ladder_pairings():
    models, baselines = ["iter_10", "iter_20", "iter_30"], ["random", "greedy"]
    assert ladder.pairings(models, baselines) == [
        ("random", "greedy"),
        ("iter_10", "random"), ("iter_10", "greedy"), ("iter_20", "random"),
        ("iter_20", "greedy"), ("iter_30", "random"), ("iter_30", "greedy"),
        ("iter_10", "iter_20"), ("iter_20", "iter_30")]
    assert len(ladder.pairings(models, baselines, round_robin=True)) == 10


def test_table_lists_strongest_first():
    ratings = elo.fit({("a", "random"): (30, 0, 10)})
    lines = elo.table(ratings).splitlines()
    assert lines[0].split() == ["player", "elo", "+-", "games", "score"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "random"]
