"""tmf: temporal mean-field games, asynchronous mean-field RL.

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

__version__ = "0.1.0"
