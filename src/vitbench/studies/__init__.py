"""The studies' results pages: each study's runs (their results.json records) read back into tables,
plots, a runs CSV and a reading of what they show, written as a page of the documentation site by the
study's own make target (``make claims-study``). Torch-free: a page is redrawn from the records alone.
"""
