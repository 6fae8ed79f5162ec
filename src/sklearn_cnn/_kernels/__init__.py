"""Compiled kernels: stateless ``noexcept nogil`` functions over typed memoryviews.

Every kernel trusts its caller: shapes, strides and indices are validated in
Python (``sklearn_cnn._network``) before any kernel runs.
"""
