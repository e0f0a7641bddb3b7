"""Fixed-step ODE solvers for dy/dt = f(t, y): Euler and the classical Runge-Kutta method (RK4).

The state y is a tuple of arrays (a position x and, for the likelihood, a
running log-det), each moved by the matching entry of f(t, y):

    Euler:  y_{n+1} = y_n + h f(t_n, y_n)                               error O(h)
    RK4:    k1 = f(t_n, y_n)
            k2 = f(t_n + h/2, y_n + h/2 k1)
            k3 = f(t_n + h/2, y_n + h/2 k2)
            k4 = f(t_n + h,   y_n + h k3)
            y_{n+1} = y_n + h/6 (k1 + 2 k2 + 2 k3 + k4)                 error O(h^4)

The global error after integrating over a fixed interval falls by 2x (Euler)
or 16x (RK4) when the number of steps doubles. h may be negative: the
likelihood integrates from t = 1 (data) back to t = 0 (noise).
Fixed steps, not adaptive ones: every sample costs the same known number of
network evaluations (4 per RK4 step), and "how many steps are enough" is a
question a learner can answer by doubling them (lesson 13).
"""

from ..checks import check_positive_int

__all__ = ["METHODS", "euler_step", "odeint", "rk4_step"]


def _moved(y, h, k):
    """y + h k, entry by entry of the tuples."""
    return tuple(a + h * b for a, b in zip(y, k))


def euler_step(f, t, y, h):
    """One Euler step: y + h f(t, y)."""
    return _moved(y, h, f(t, y))


def rk4_step(f, t, y, h):
    """One classical Runge-Kutta step (four evaluations of f)."""
    k1 = f(t, y)
    k2 = f(t + h / 2, _moved(y, h / 2, k1))
    k3 = f(t + h / 2, _moved(y, h / 2, k2))
    k4 = f(t + h, _moved(y, h, k3))
    return tuple(a + (h / 6) * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4))


METHODS = {"euler": euler_step, "rk4": rk4_step}


def odeint(f, y0, t0, t1, n_steps, method="rk4", callback=None):
    """Integrate dy/dt = f(t, y) from t0 to t1 in ``n_steps`` equal steps.

    Args:
        f: ``f(t, y) -> tuple`` of arrays shaped like y (t is a float).
        y0: the state at t0, a tuple of arrays.
        t0, t1: start and end times (t1 < t0 integrates backwards).
        n_steps: positive number of steps, h = (t1 - t0) / n_steps.
        method: "rk4" or "euler".
        callback: optional ``callback(t, y)``, called at t0 and after every step
            (to record a path, e.g. for an animation).

    Returns:
        the state at t1, a tuple like y0.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}.")
    step = METHODS[method]
    h = (t1 - t0) / n_steps
    y = tuple(y0)
    if callback is not None:
        callback(t0, y)
    for i in range(n_steps):
        t = t0 + i * h  # not accumulated: no drift of t over many steps
        y = step(f, t, y, h)
        if callback is not None:
            callback(t0 + (i + 1) * h, y)
    return y
