"""Data preparation, from pictures to the packed set the trainer reads: face crops (`crop`), the tag CSV
(`tagfile`), extra label files laid over a source's labels (`labels`) and packing (`pack`).

Below the tagger: `kyara data tag` writes tag files with the tagger, and the tagger trains on packed sets and
label files, but nothing here needs a model.
"""
