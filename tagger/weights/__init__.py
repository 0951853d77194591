"""The shipped tagger (tagger.safetensors + tagger.json) and its validation report; a package so that wheels
carry the files as package data. Load it with `tagger.model.load_tagger()`."""
