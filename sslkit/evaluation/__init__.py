"""Evaluation of frozen features, shared by every objective that learns a representation:
linear-probe and k-NN accuracy with all training labels and with a few labels per class, and a
2-D t-SNE figure of the embedding."""
from .features import embedding_figure, extract_features, few_label_subset, knn_accuracy, probe_metrics

__all__ = ["embedding_figure", "extract_features", "few_label_subset", "knn_accuracy", "probe_metrics"]
