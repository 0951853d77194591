"""Tag vocabulary and the CNN tagger.

Importing this package (or `tagger.vocab`) must stay free of torch and timm: the web app and the
torch-free runtime read the vocabulary too.
"""
