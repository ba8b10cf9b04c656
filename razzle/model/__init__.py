"""Input planes, policy orientation, the three-headed network, model files, the evaluator."""
