"""The bottom layer every other package stands on: the tag vocabulary, atomic file writes, the one picture
decoder, the packed-set format, the crop folder's records and the command-line option types.

Nothing here imports torch, timm, OpenCV or another package of the project: the tagger, the trainer, the
exporter and the torch-free runtime all read these, so they must be cheap to import and depend on nothing
above them.
"""
