"""Build the Cython core. Hashing links OpenSSL's libcrypto: it is what hashlib uses,
and its SHA-1 takes the SHA-NI path on CPUs that have it."""

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3"]

extensions = [
    Extension(
        "torrentpy._core.hashing",
        ["torrentpy/_core/hashing.pyx"],
        libraries=["crypto"],
        # OpenMP spreads one batch of pieces over every core in a single call.
        extra_compile_args=[*COMPILE_ARGS, "-fopenmp"],
        extra_link_args=["-fopenmp"],
    ),
    Extension(
        "torrentpy._core.bitfield",
        ["torrentpy/_core/bitfield.pyx"],
        extra_compile_args=COMPILE_ARGS,
    ),
    Extension(
        "torrentpy._core.bdecode",
        ["torrentpy/_core/bdecode.pyx"],
        extra_compile_args=COMPILE_ARGS,
    ),
    Extension(
        "torrentpy._core.rc4",
        ["torrentpy/_core/rc4.pyx"],
        extra_compile_args=COMPILE_ARGS,
    ),
    Extension(
        "torrentpy._core.filelist",
        ["torrentpy/_core/filelist.pyx"],
        extra_compile_args=COMPILE_ARGS,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
