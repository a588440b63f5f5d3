"""Setuptools shim: metadata lives in setup.cfg. The package list is here because the top-level fid_refs/ folder
(the FID reference registry) is installed as the subpackage edm_bdia.fid_refs (package_dir in setup.cfg), which a
`packages = find:` search cannot discover."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=['edm_bdia', 'edm_bdia.*', 'torch_utils', 'torch_utils.*']) +
      ['edm_bdia.fid_refs'])
