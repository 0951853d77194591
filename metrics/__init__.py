"""How good a generator is, in figures beside the same figures for real faces (`kyara eval`, and the trainer's
in-loop evaluation), because on their own they mean little.

One module per metric, each explaining its own figure: realness and shape realness (`realness`), tag fidelity
(`fidelity`), attribute fidelity (`attributes`), face and nightmare rate (`face_rate`), KID (`kid`), FID
(`fid`), diversity (`diversity`) and the spectrum (`spectrum`); `registry` lists them, `base` is what a metric
is and what it is handed, `reference` computes the real side, `evaluate` the generated side and the sheets,
`report` renders them all. Blind sheets (judge/blind.py) shuffle generated and real faces for a person's own
count.

Which to trust for what: the blind sheets, then realness (texture) and shape realness (layout), for "does it
look made by a person" (realness tests the set, variety included, so it ranks a truncated model below the same
model untruncated although a person sees fewer broken faces in it: compare realness at one truncation);
fidelity for "does it draw what was asked"; diversity for collapse; face rate only for gross failures (the
detector accepts blurred faces); the spectrum for what is wrong with the texture (grain or blur, chroma for
the coloured speckle); KID and FID for comparing checkpoints of one run with one tagger.
"""
