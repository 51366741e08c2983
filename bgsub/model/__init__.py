"""The model wing: the per-pixel mixture and what turns a frame into a mask.

* :mod:`~bgsub.model.masker`: :class:`~bgsub.model.masker.MixtureMasker`, the public model;
* :mod:`~bgsub.model.backend`, :mod:`~bgsub.model.tiles`, :mod:`~bgsub.model.kernels`: the
  Numba kernels and the threads that share a frame's tiles;
* :mod:`~bgsub.model.em`: the EM bootstrap;
* :mod:`~bgsub.model.postprocess`: cleaning the raw mask;
* :mod:`~bgsub.model.step`: the frame step (masker, then post-processing) every command runs;
* :mod:`~bgsub.model.checkpoint`: the model's file format.

It imports only the bottom modules (config, errors, labels, files).
"""
