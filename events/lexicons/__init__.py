"""The Lexicon JSON documents, shipped inside the package (read with importlib.resources)."""
