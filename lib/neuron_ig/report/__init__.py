"""Layer 5, the book: the runner that executes the notebooks and builds the site (``runner``), its pre-flight
checks (``preflight``), altair charts rendered offline (``plots``), page text helpers (``narrative``), page
provenance (``provenance``), data downloads (``downloads``) and the Sphinx extension that keeps the site
offline (``sphinx_offline``). Needs the ``book`` extra."""
