"""Relation functions R(z, X): targets and weights for unlabeled data (registered under ``relations``)."""
