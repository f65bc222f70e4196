"""Numeric limits shared by the spec language and the command line.

Kept free of imports so the command line can bound its options without loading pydantic.
"""

# The largest extent (pixels, channels, units, images, iterations) a spec or an option may ask
# for: the int32 range in which every framework indexes tensor dimensions.
MAX_SIZE = 2**31 - 1
# Seeds are 63-bit: NumPy, PyTorch and TensorFlow all take them.
MAX_SEED = 2**63 - 1
# Intra-op threads per process (--threads): beyond any CPU's core count, and small enough that
# no framework's thread pool fails to allocate.
MAX_THREADS = 4096


def digits(number: int) -> int:
    """Decimal digits of ``number`` without converting it to text (no digit limit applies)."""
    number = abs(number)
    count = max(1, int(number.bit_length() * 0.30102999566398))  # never more than the answer
    while 10**count <= number:
        count += 1
    return count


def number_text(number: int) -> str:
    """An integer as an error message shows it: itself, or ``a 401-digit number``."""
    return f"a {digits(number):,}-digit number" if digits(number) > 30 else repr(number)
