"""Export: a checkpoint's EMA generator -> ONNX (fp32 and int8) + manifest, and a torch-free runtime.

`export.runtime` imports only onnxruntime, numpy, pillow and the tag vocabulary; everything else here
imports torch and `training`, and is only needed to make the model files.
"""
