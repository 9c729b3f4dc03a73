# The native helper is compiled at install time by cffi (API mode); see native/build_ffi.py.
from setuptools import setup

setup(cffi_modules=["native/build_ffi.py:ffibuilder"])
