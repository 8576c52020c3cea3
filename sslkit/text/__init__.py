"""Offline text tools: tokenizers (each registers itself under ``tokenizers``)."""
