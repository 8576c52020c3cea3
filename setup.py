from setuptools import find_packages, setup

setup(
    name="sslkit",
    version="0.1.0",
    description="Semi-, weak- and self-supervised learning objectives on PyTorch, run from YAML recipes.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["sslkit", "sslkit.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.2",
        "torchvision>=0.17",
        "scikit-learn>=1.3",
        "pytorch-metric-learning>=2.3",
        "click>=8.1",
        "PyYAML>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "safetensors>=0.4",  # encoder exports
        "scipy>=1.10",  # SVHN's .mat files (scikit-learn needs it anyway)
    ],
    extras_require={
        # tokenizers, transformers and timm in test: CI runs the BPE, Hugging Face and timm tests;
        # pytest-xdist: the README's test command spreads the suite over the machine's cores (-n auto)
        "test": ["pytest>=7", "pytest-xdist>=3.2", "hypothesis>=6", "tokenizers>=0.15", "transformers>=4.46",
                 "safetensors>=0.4", "timm>=1.0.16"],
        "bpe": ["tokenizers>=0.15"],
        "hf": ["transformers>=4.46", "tokenizers>=0.15", "safetensors>=0.4"],
        "timm": ["timm>=1.0.16"],
        "trl": ["trl>=1.12,<1.13"],  # benchmarks/hf.py only: the PPOTrainer it is compared with
    },
    entry_points={"console_scripts": ["sslkit=sslkit.cli:main"]},
)
