"""One folder per model family (configuration, modeling, conversion, processing, card data).

Generic code never imports these directly by family: it asks :mod:`fourd_hub.registry`.
"""
