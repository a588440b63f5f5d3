"""Helpers shared by the tests (no tests here): `generate` (tiny network pickles, command runners, an independent
restatement of NVlabs' generate.py, folder snapshots), `persistence` (NVlabs-format training snapshots and
subprocess runners), `fid` (stand-in FID detectors in every format the loader reads), `nets` (small networks with
the NVlabs interface for the sampler tests)."""
