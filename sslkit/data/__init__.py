"""Datasets (each module registers one or more under ``datasets``), splits and batch streams."""
from .base import UNLABELED, DataBundle, DataInfo, Examples, LazyColumn, TensorData, prepare

__all__ = ["UNLABELED", "DataBundle", "DataInfo", "Examples", "LazyColumn", "TensorData", "prepare"]
