"""The CNN tagger (timm backbone), its training, reports and the review of its tags.

The tag vocabulary it predicts is `common.vocab`, below this package: the web app's manifest, the trainer
and the torch-free runtime read it without importing the tagger. `dataset.tagfile` (the tag CSV) stays free
of torch and timm too; the modules that need them import them themselves.
"""
