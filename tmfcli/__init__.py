"""tmf: temporal mean-field games, asynchronous mean-field RL.

The Python API (docs/api.md) is ``tmfcli.api``, also reachable from the package::

    import tmfcli as tmf
    result = tmf.solve("experiments/resource-demo.yaml", {"population.batch": 10})
    result.tables["policy"]

Shapes used everywhere (O observations, A actions, T steps, leading ``...`` = batch axes):

=========  ===================  ==================================================
name       shape                meaning
=========  ===================  ==================================================
mu         (T+1, O)             population flow; each row a distribution over O
pi         (T, O, A)            policy, conditional pi_t(a|o); rows sum to 1
P          (..., O, A, O)       active kernel, conditional P(o'|o,a,mu)
P0         (..., O, O)          idle kernel, conditional P0(o'|o,mu)
r          (..., O, A)          active reward r(o,a,mu)
r0         (..., O)             idle reward r0(o,mu)
alpha      (T,)                 active fraction B_t / N at each step
Q          (T, O, A)            action values of an active agent
V          (T+1, O)             values of the representative agent, V_T = 0
=========  ===================  ==================================================
"""

from typing import TYPE_CHECKING

from tmfcli.version import __version__

if TYPE_CHECKING:  # what __getattr__ returns, for type checkers (the import is deferred)
    from tmfcli.api import (
        COMMANDS,
        Result,
        Spec,
        TmfError,
        bound_check,
        load_spec,
        read,
        run,
        simulate,
        solve,
        train,
    )

__all__ = ["COMMANDS", "Result", "Spec", "TmfError", "__version__", "bound_check", "load_spec",
           "read", "run", "simulate", "solve", "train"]
_API = tuple(name for name in __all__ if name != "__version__")


def __getattr__(name: str) -> object:
    """``tmf.solve`` etc. from ``tmfcli.api``, imported on first use: the API pulls numpy,
    pandas and numba, which ``tmf --help`` must not wait for (start-up)."""
    if name in _API:
        from tmfcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'tmfcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
