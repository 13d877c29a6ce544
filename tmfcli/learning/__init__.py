"""Learning from N-agent rollouts (``tmf train``, MODEL.md section 6): the population-aware
policy class, count-based rollouts, the aggregated critic, TMF-PG (sampled and exact), the
mean-action Q-learning baseline, optimisers and the training loop."""
