"""Objectives: small modules that turn a batch into a loss (registered under ``objectives``)."""
from .base import Classifier, Objective, ObjectiveContext, Output

__all__ = ["Classifier", "Objective", "ObjectiveContext", "Output"]
