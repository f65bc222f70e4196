"""Numeric limits shared by the spec language and the command line.

Kept free of imports so the command line can bound its options without loading pydantic.
"""

# The largest extent (pixels, channels, units, images, iterations) a spec or an option may ask
# for: the int32 range in which every framework indexes tensor dimensions.
MAX_SIZE = 2**31 - 1
# Seeds are 63-bit: NumPy, PyTorch and TensorFlow all take them.
MAX_SEED = 2**63 - 1
