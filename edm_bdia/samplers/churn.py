"""Stochastic churn of EDM Algorithm 2 (lines 4-6): lift the noise level from t to t_hat and add matching noise."""

import numpy as np


def churn_gamma(t, num_steps, S_churn, S_min, S_max):
    """gamma_i = min(S_churn / N, sqrt(2) - 1) if S_min <= t_i <= S_max else 0 (EDM Algorithm 2, line 4)."""
    return min(S_churn / num_steps, np.sqrt(2) - 1) if S_min <= t <= S_max else 0
