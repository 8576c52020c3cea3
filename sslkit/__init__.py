"""sslkit: semi-, weak- and self-supervised learning objectives on PyTorch, run from YAML recipes."""
from .errors import ConfigError, SSLKitError
from .registry import register, registry
from .runner import RunResult, run, validate

__version__ = "0.1.0"
__all__ = ["ConfigError", "SSLKitError", "RunResult", "register", "registry", "run", "validate", "__version__"]
