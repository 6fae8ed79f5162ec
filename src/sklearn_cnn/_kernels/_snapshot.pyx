"""Bookkeeping of prepared predictions: a copy of some arrays' bytes, to tell
cheaply whether any of them changed, whether a model still holds the same
arrays, and typed views for replayed kernel calls.
Neither is hot, so the module is built for size (-Os).

Prediction derives values from the parameters alone (folded
BatchNormalizations, Winograd weights) that cost more to recompute than to
compare their inputs with a copy: for one resnet2d image, 29 us of a 170 us
forward against about 3 us to compare its 0.3 MB of parameters.  Comparing
bytes is exact: a value changed in place, by partial_fit or by hand, is seen.

Within a prediction the arrays and the copy have left the cache: the FCN's
1 MB then took 95-110 us to compare, 12% of one series' prediction on 2
threads.  So the comparison runs over blocks of the arrays' bytes in all the
prediction's threads; its answer does not depend on how many.
"""

cimport cython
from cython cimport floating
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc
from cython.parallel cimport prange
from libc.string cimport memcmp, memcpy

import numpy as np

# Bytes compared per parallel block, and the fewest blocks compared in
# parallel: one image, 2 threads, serial against parallel comparison, in one
# process: the FCN (1 MB, 16 blocks) 0.948x; resnet2d (0.3 MB) 1.006x and
# FM-LeNet (75 KB) 1.025x, where a parallel region costs more than it saves.
cdef Py_ssize_t BLOCK_BYTES = 65536
cdef Py_ssize_t PARALLEL_MIN_BLOCKS = 8


cdef bint bytes_differ(Py_buffer* views, const Py_ssize_t* offsets, Py_ssize_t n_arrays,
                       const char* copy, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Whether bytes [start, stop) of the arrays, laid end to end, differ
    from the copy's."""
    cdef Py_ssize_t low = 0, high = n_arrays - 1, middle, i, end
    # The array that holds byte ``start``: the last with offsets[i] <= start.
    while low < high:
        middle = (low + high + 1) // 2
        if offsets[middle] <= start:
            low = middle
        else:
            high = middle - 1
    i = low
    while start < stop:
        end = min(stop, offsets[i + 1])
        if memcmp(copy + start, <const char*> views[i].buf + (start - offsets[i]),
                  end - start) != 0:
            return True
        start = end
        i += 1
    return False


@cython.auto_pickle(False)
cdef class ArraysSnapshot:
    """The bytes of ``arrays`` (C-contiguous buffers, e.g. NumPy arrays) as
    they are now.

    The snapshot holds a buffer export of each array until it is freed, so
    their data stays where it is (NumPy refuses to resize an exported array).

    Parameters
    ----------
    arrays : sequence of ndarray
        C-contiguous arrays whose bytes to copy.
    """

    cdef Py_buffer* views
    cdef Py_ssize_t* offsets  # where each array starts in the copy; then the total
    cdef Py_ssize_t n_arrays, total
    cdef char* copy

    def __cinit__(self, arrays):
        cdef Py_ssize_t i
        arrays = list(arrays)
        self.views = <Py_buffer*> PyMem_Calloc(max(len(arrays), 1), sizeof(Py_buffer))
        if self.views == NULL:
            raise MemoryError()
        for array in arrays:
            try:
                PyObject_GetBuffer(array, &self.views[self.n_arrays], PyBUF_C_CONTIGUOUS)
            except (BufferError, ValueError):
                raise ValueError(
                    "ArraysSnapshot takes C-contiguous arrays only") from None
            self.total += self.views[self.n_arrays].len
            self.n_arrays += 1
        self.offsets = <Py_ssize_t*> PyMem_Malloc((self.n_arrays + 1) * sizeof(Py_ssize_t))
        self.copy = <char*> PyMem_Malloc(max(self.total, 1))
        if self.copy == NULL or self.offsets == NULL:
            raise MemoryError()
        self.offsets[0] = 0
        for i in range(self.n_arrays):
            self.offsets[i + 1] = self.offsets[i] + self.views[i].len
        self.take()

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self.n_arrays):
            PyBuffer_Release(&self.views[i])
        PyMem_Free(self.views)
        PyMem_Free(self.offsets)
        PyMem_Free(self.copy)

    def take(self):
        """Copy the arrays' bytes as they are now."""
        cdef Py_ssize_t i, offset = 0
        with nogil:
            for i in range(self.n_arrays):
                memcpy(self.copy + offset, self.views[i].buf, self.views[i].len)
                offset += self.views[i].len

    def unchanged(self, int n_threads=1):
        """True if every array holds the bytes it held at the last ``take``,
        compared in blocks by ``n_threads`` threads."""
        cdef Py_ssize_t n_blocks = (self.total + BLOCK_BYTES - 1) // BLOCK_BYTES
        cdef Py_ssize_t block, n_differing = 0
        if self.total == 0:
            return True
        if n_threads <= 1 or n_blocks < PARALLEL_MIN_BLOCKS:
            with nogil:
                n_differing = bytes_differ(self.views, self.offsets, self.n_arrays,
                                           self.copy, 0, self.total)
            return n_differing == 0
        with nogil:
            for block in prange(n_blocks, schedule="static", num_threads=n_threads):
                n_differing += bytes_differ(
                    self.views, self.offsets, self.n_arrays, self.copy,
                    block * BLOCK_BYTES, min((block + 1) * BLOCK_BYTES, self.total))
        return n_differing == 0


def holds_values(tuple objects, dict first, dict second):
    """True if ``objects`` are the values of ``first`` then ``second``, the
    very same objects in the same order.

    The prediction pool's test that a model still holds the arrays its
    networks are bound to: for resnet2d's 56 arrays, the key of their ids
    that it replaces took 3.5 us of a 190 us single-image prediction.
    """
    cdef Py_ssize_t index = 0, position
    cdef PyObject* key
    cdef PyObject* value
    if len(objects) != len(first) + len(second):
        return False
    for values in (first, second):
        position = 0
        while PyDict_Next(values, &position, &key, &value):
            if value != PyTuple_GET_ITEM(objects, index):
                return False
            index += 1
    return True


def typed_views(tuple arguments):
    """``arguments`` with every writeable, C-contiguous float32 or float64
    ndarray of 1, 2 or 4 dimensions (those the kernels take) replaced by a
    typed memoryview of it.

    A kernel takes such a view without acquiring and checking the array's
    buffer again (the views are of the type shared by all kernel modules):
    replayed prediction plans pass them.  Other arguments are kept as they
    are.  Here, not in a kernel module: the conversions to these views grew
    ``_activations`` by 16.5 KB, this module (-Os) by 8.5 KB.
    """
    return tuple([_typed_view(argument) for argument in arguments])


cdef object _typed_view(object array):
    if (type(array) is not np.ndarray or not array.flags.c_contiguous
            or not array.flags.writeable):
        return array
    if array.dtype == np.float32:
        return _view_of(array, <float*> NULL)
    if array.dtype == np.float64:
        return _view_of(array, <double*> NULL)
    return array


cdef object _view_of(object array, floating* item_type):
    """A typed memoryview of ``array``, whose items are ``item_type``'s."""
    cdef floating[::1] one
    cdef floating[:, ::1] two
    cdef floating[:, :, :, ::1] four
    if array.ndim == 1:
        one = array
        return one
    if array.ndim == 2:
        two = array
        return two
    if array.ndim == 4:
        four = array
        return four
    return array
