"""Regularizers Omega(theta), added to the loss as ``weight * Omega`` (registered under ``regularizers``)."""
