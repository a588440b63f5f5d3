"""What every sharded run over a network shares: generate (edm_bdia.generation), invert and edit
(edm_bdia.editing) are jobs over this layer.

* `runtime`: the network opened once (rank 0 first) and run under one speed plan;
* `network`: a network argument resolved and opened, with the identity a manifest records;
* `folder`: the output folder checked, claimed with the run's manifest, and given back after an early failure;
* `manifest`: the settings that made a folder's files, so that resumed runs never mix settings;
* `lockstep`: the batches of a work list over the ranks, one round per iteration, with a progress bar that a
  sampler's step callback (`progress_callback`) moves within a round;
* `writer`: PNG files written on background threads;
* `images`: the check that sampled images are finite.

A job reads top to bottom: check its arguments, join the process group (`distributed.init`), read its inputs, open
the runtime, check the inputs against the network, prepare and claim the folder, loop over the lockstep batches
(each inside `distributed.all_ranks()`), finish.
"""
