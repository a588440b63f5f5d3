"""The registry of published FID reference statistics (registry.json), installed as the package data of
`edm_bdia.fid_refs` (setup.py maps this folder there); read it with edm_bdia.fid.refs.registry()."""
