"""Many-step reference solves of the probability-flow ODE dx/dt = (x - D(x; t)) / t with scipy's DOP853."""

import math

import torch
from scipy.integrate import solve_ivp


def ode_solve(net, x_start, class_labels, t_from, t_to, tolerance):
    """x(t_to) from x(t_from) = x_start: DOP853 with rtol = atol = `tolerance` on the whole batch as one system
    (float64), in the variable u = ln t, where dx/du = t dx/dt = x - D(x; t) varies on one scale from t = 80 down
    to t = 1e-9. Returns (x, number of network evaluations)."""
    shape = x_start.shape

    def rhs(u, y):
        x = torch.from_numpy(y).reshape(shape)
        t = torch.tensor(math.exp(u), dtype=torch.float64)
        return (x - net(x, t, class_labels).to(torch.float64)).reshape(-1).numpy()

    solution = solve_ivp(rhs, (math.log(t_from), math.log(t_to)), x_start.to(torch.float64).reshape(-1).numpy(),
                         method='DOP853', rtol=tolerance, atol=tolerance)
    if not solution.success:
        raise RuntimeError(f'reference solve failed: {solution.message}')
    return torch.from_numpy(solution.y[:, -1].copy()).reshape(shape), solution.nfev


def final_denoising_step(net, x, class_labels, sigma):
    """One Euler step from `sigma` to 0, x + (0 - sigma) d(x, sigma) = D(x; sigma): how every EDM sampler ends."""
    return net(x, torch.as_tensor(sigma, dtype=torch.float64), class_labels).to(torch.float64)
